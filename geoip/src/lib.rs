//! Geolocation: loading the IP database and measuring distances for placement. Empty until the
//! placement issue; it exists so the workspace layout is final.
