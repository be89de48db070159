//! The balancer's web pages (handlebars templates) and static files. Empty until the dashboard
//! issue; it exists so the workspace layout is final.
