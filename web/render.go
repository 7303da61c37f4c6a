package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"
)

// Render renders a component into a buffer first, so a failed render is an error response and
// not half a page.
func Render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// Fragment renders a component to a string (the console's live fragments).
func Fragment(ctx context.Context, comp templ.Component) (string, error) {
	var buf bytes.Buffer
	err := comp.Render(ctx, &buf)
	return buf.String(), err
}

// NewToken returns 128 random bits in hex: connection ids and form tokens.
func NewToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
