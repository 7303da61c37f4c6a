package web

import "github.com/labstack/echo/v4"

// adminRoutes registers /admin (being built).
func (s *Server) adminRoutes(e *echo.Echo) {}
