// Package static embeds the browser assets served under /static/: the customer library
// chat-service.js with its TypeScript declarations, and the demo widget's script and styles.
package static

import "embed"

// FS holds the assets.
//
//go:embed *.js *.ts *.css
var FS embed.FS
