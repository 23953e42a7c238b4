package main

import (
	"net/http"

	"github.com/ccevents/ccevents/web"
)

// staticHandler serves the wallboard, the browser client and the index page
// on the REST API's port.
func staticHandler() http.Handler { return web.APIHandler() }

// clientHandler serves plain HTTP requests on the websocket port (the
// browser client module), so a page can load it from the gateway itself.
func clientHandler() http.Handler { return web.GatewayHandler() }
