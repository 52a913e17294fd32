// Empty on purpose: screens.css is linked by index.html (no script-injected stylesheets).
// Kept only while js/screens/admin_seals.js still imports it; delete both together.
