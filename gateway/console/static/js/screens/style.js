// The sending, approval, sealing, devices and admin screens keep their own rules in
// screens.css (console.css belongs to the shell). Each of those screens imports this
// module; being a module it runs once and adds one <link> to the same versioned asset base
// (allowed by the CSP's style-src 'self').
const link = document.createElement("link");
link.rel = "stylesheet";
link.href = new URL("../../screens.css", import.meta.url).href;
document.head.append(link);
