// Node-RED settings for `npm start` (a local demo; see Node-RED's docs for production settings).
'use strict';
module.exports = {
  uiPort: Number(process.env.PORT) || 1880,
  uiHost: process.env.HOST || '127.0.0.1',
  flowFile: 'flows.json',
  // A fixed secret keeps the demo's credentials readable across restarts; set your own in production.
  credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET || 'lwm2m-demo-secret',
  logging: { console: { level: process.env.LOG_LEVEL || 'info', metrics: false, audit: false } },
  // Nothing covers the editor on the first visit: no welcome tour (tours), and no "Enable Update Notifications"
  // dialog, which Node-RED 4 and 5 show until telemetry is set either way (a user can still turn update
  // notifications on in the editor's User Settings).
  editorTheme: { projects: { enabled: false }, tours: false },
  telemetry: { enabled: false, updateNotification: false },
  functionGlobalContext: {},
};
