package web

import (
	"github.com/labstack/echo/v4"
)

// consoleRoutes registers the agent console's routes.
func (s *Server) consoleRoutes(e *echo.Echo) {
}
