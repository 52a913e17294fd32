// Every screen of the console: the router matches `path` (":name" segments become
// params), the shell builds its navigation from the entries with `nav: true` whose
// `roles` the official holds (an empty list: everyone logged in). `public: true` screens
// are shown without a session. Each helper adds its own lines.
import { Enroll } from "./enroll.js";
import { Login, PasskeySetup } from "./login.js";
import { Dashboard } from "./dashboard.js";
import { Inbox } from "./inbox.js";
import { DocumentView } from "./document.js";
import { SendScreen } from "./send.js";
import { SentScreen } from "./sent.js";
import { TodoScreen } from "./todo.js";
import { SealScreen } from "./seal.js";
import { DevicesScreen } from "./devices.js";
import { AdminOfficialsScreen } from "./admin.js";
import { AdminSealsScreen } from "./admin_seals.js";
import { AdminWebhooksScreen } from "./admin_webhooks.js";
import { AdminDepartmentsScreen } from "./admin_directory.js";

const DRAFTERS = ["clerk", "seal_keeper", "system"];
const APPROVERS = ["clerk", "leader", "dept_admin", "seal_keeper"];
const MANAGERS = ["dept_admin", "admin"];

export const screens = [
  { path: "#/enroll", component: Enroll, title: "enroll.title", nav: false, roles: [], public: true },
  { path: "#/enroll/:official/:code", component: Enroll, title: "enroll.title", nav: false, roles: [], public: true },
  { path: "#/login", component: Login, title: "login.title", nav: false, roles: [], public: true },
  { path: "#/passkey-setup", component: PasskeySetup, title: "passkey.setup.title", nav: false, roles: [] },
  { path: "#/", component: Dashboard, title: "nav.dashboard", nav: true, roles: [] },
  { path: "#/inbox", component: Inbox, title: "nav.inbox", nav: true, roles: [] },
  { path: "#/documents/:id", component: DocumentView, title: "document.title", nav: false, roles: [] },
  { path: "#/send", component: SendScreen, title: "nav.send", nav: true, roles: DRAFTERS },
  { path: "#/sent", component: SentScreen, title: "nav.sent", nav: true, roles: [...DRAFTERS, "leader", "dept_admin"] },
  { path: "#/todo", component: TodoScreen, title: "nav.todo", nav: true, roles: APPROVERS },
  { path: "#/todo/:document", component: TodoScreen, title: "nav.todo", nav: false, roles: APPROVERS },
  { path: "#/seal", component: SealScreen, title: "nav.seal", nav: true, roles: ["seal_keeper"] },
  { path: "#/seal/:document", component: SealScreen, title: "nav.seal", nav: false, roles: ["seal_keeper"] },
  { path: "#/devices", component: DevicesScreen, title: "nav.devices", nav: true, roles: [] },
  { path: "#/admin/officials", component: AdminOfficialsScreen, title: "nav.admin", nav: true, roles: MANAGERS },
  { path: "#/admin/seals", component: AdminSealsScreen, title: "admin.seals", nav: false, roles: MANAGERS },
  { path: "#/admin/webhooks", component: AdminWebhooksScreen, title: "admin.webhooks", nav: false, roles: MANAGERS },
  { path: "#/admin/departments", component: AdminDepartmentsScreen, title: "admin.departments", nav: false, roles: MANAGERS },
];
