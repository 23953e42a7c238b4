// Package web serves what ccevents offers to browsers, embedded in the
// binary: the browser client /client/ccevents.js (a dependency-free ES
// module), the live wallboard at /wallboard and a small index page.
//
// web holds no state and never talks to the bus or the engine: the
// wallboard is a static page that uses the public REST API and the
// websocket gateway like any other client.
package web
