package main

import (
	"errors"
	"math"
	"strconv"

	"agentd/web/api"
)

// loadAPI reads the integrator API's rate limit per token: AGENTD_API_RATE requests per second,
// in bursts of AGENTD_API_BURST. Values set in code are the defaults the environment overrides.
func (c *Config) loadAPI() error {
	if c.API.Rate <= 0 {
		c.API.Rate = api.DefaultConfig.Rate
	}
	if c.API.Burst <= 0 {
		c.API.Burst = api.DefaultConfig.Burst
	}
	if v := env("AGENTD_API_RATE", ""); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || math.IsInf(r, 0) || math.IsNaN(r) {
			return errors.New("AGENTD_API_RATE must be a positive number of requests per second, such as 20")
		}
		c.API.Rate = r
	}
	if v := env("AGENTD_API_BURST", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return errors.New("AGENTD_API_BURST must be a positive integer, such as 40")
		}
		c.API.Burst = n
	}
	return nil
}
