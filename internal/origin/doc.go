// Package origin decides whether a browser page may open a websocket to the
// gateway, from the Origin header of the handshake and an allow-list of
// exact origins ("https://wallboard.example.com") and host wildcards
// ("https://*.example.com").
//
// Only browsers send Origin, and only browsers need this check: it stops a
// page on another site from using a visitor's browser to connect. Requests
// without Origin (servers, command-line clients) are always allowed, and an
// empty list allows every origin. origin never authenticates anyone; tokens
// do that.
package origin
