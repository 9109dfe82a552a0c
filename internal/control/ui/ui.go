// Package ui is weir's web UI: one HTML page, one script and one style
// sheet, embedded in the binary and served by the control plane at /ui/.
// The page reads only the control plane's own JSON API (docs/api.md) and
// loads nothing from other hosts, so it works offline and needs no build
// step.
//
// Handler holds no state and is safe for concurrent use.
package ui

import (
	"bytes"
	"embed"
	"net/http"
	"strings"
	"time"
)

//go:embed index.html app.js style.css
var assets embed.FS

// contentTypes lists the assets. Types are set here, not guessed from the
// platform's MIME table (which can map .js to text/plain).
var contentTypes = map[string]string{
	"index.html": "text/html; charset=utf-8",
	"app.js":     "text/javascript; charset=utf-8",
	"style.css":  "text/css; charset=utf-8",
}

// csp keeps the page to its own origin: no inline script, nothing from
// another host.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Handler serves the assets. Mount it with its prefix stripped, so that it
// sees "/" (the page) and "/app.js"; any other path is 404.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "" {
			name = "index.html"
		}
		ct, ok := contentTypes[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		b, err := assets.ReadFile(name)
		if err != nil { // cannot happen: the names above are embedded
			http.Error(w, "asset missing from the binary", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ct)
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	})
}
