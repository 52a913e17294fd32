// Every screen of the console: the router matches `path` (":name" segments become
// params), the shell builds its navigation from the entries with `nav: true` whose
// `roles` the official holds (an empty list: everyone logged in). `public: true` screens
// are shown without a session. Each helper adds its own lines.
import { Enroll } from "./enroll.js";
import { Login, PasskeySetup } from "./login.js";
import { Dashboard } from "./dashboard.js";
import { Inbox } from "./inbox.js";
import { DocumentView } from "./document.js";

export const screens = [
  { path: "#/enroll", component: Enroll, title: "enroll.title", nav: false, roles: [], public: true },
  { path: "#/enroll/:official/:code", component: Enroll, title: "enroll.title", nav: false, roles: [], public: true },
  { path: "#/login", component: Login, title: "login.title", nav: false, roles: [], public: true },
  { path: "#/passkey-setup", component: PasskeySetup, title: "passkey.setup.title", nav: false, roles: [] },
  { path: "#/", component: Dashboard, title: "nav.dashboard", nav: true, roles: [] },
  { path: "#/inbox", component: Inbox, title: "nav.inbox", nav: true, roles: [] },
  { path: "#/documents/:id", component: DocumentView, title: "document.title", nav: false, roles: [] },
];
