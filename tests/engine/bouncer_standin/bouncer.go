// Package crowdsec_bouncer_traefik_plugin stands in for the CrowdSec bouncer
// plugin in the engine suite's edge image (tests/engine/images.py): the real
// plugin's source is fetched from GitHub when edge/Dockerfile is built, which
// cannot be done here. Traefik loads it as it loads the real one (a local
// plugin interpreted by Yaegi: CreateConfig, then New per middleware), so the
// routers using crowdsec@file are served only if it loads.
//
// It lets every request through. Its configuration takes exactly the settings
// fourlb writes (core/traefik.py bouncer_settings); a setting it does not know
// is refused, so that a new one is added here (after checking the real plugin
// takes it) rather than silently ignored. Like the real one in stream mode
// (v1.4.2 bouncer.go: the package's ticker), it streams CrowdSec's decisions
// once per Traefik process, with the key of the first middleware it builds,
// read from crowdsecLapiKeyFile (pkg/configuration GetVariable: trimmed).
package crowdsec_bouncer_traefik_plugin

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Config is the middleware's settings, as Traefik decodes them (mapstructure,
// keys matched without regard to case).
type Config struct {
	Enabled               bool
	CrowdsecMode          string
	UpdateIntervalSeconds int64
	UpdateMaxFailure      int64
	CrowdsecLapiScheme    string
	CrowdsecLapiHost      string
	CrowdsecLapiKey       string
	CrowdsecLapiKeyFile   string
	// whatever else the configuration holds
	Unknown map[string]interface{} `mapstructure:",remain"`
}

// CreateConfig gives the settings before Traefik decodes the middleware's own.
func CreateConfig() *Config {
	return &Config{}
}

type passThrough struct {
	next http.Handler
}

// New checks the settings and returns the middleware.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if len(config.Unknown) > 0 {
		keys := make([]string, 0, len(config.Unknown))
		for key := range config.Unknown {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("%s: settings the bouncer stand-in does not know: %s", name, strings.Join(keys, ", "))
	}
	switch config.CrowdsecMode {
	case "none", "live", "stream", "alone", "appsec":
	default:
		return nil, fmt.Errorf("%s: crowdsecMode %q: allowed: none, live, stream, alone, appsec", name, config.CrowdsecMode)
	}
	if config.CrowdsecLapiScheme != "http" && config.CrowdsecLapiScheme != "https" {
		return nil, fmt.Errorf("%s: crowdsecLapiScheme %q: allowed: http, https", name, config.CrowdsecLapiScheme)
	}
	key := config.CrowdsecLapiKey
	if config.CrowdsecLapiKeyFile != "" {
		read, err := os.ReadFile(config.CrowdsecLapiKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: crowdsecLapiKeyFile: %v", name, err)
		}
		key = strings.TrimSpace(string(read))
	}
	if config.CrowdsecLapiHost == "" || key == "" {
		return nil, fmt.Errorf("%s: crowdsecLapiHost and crowdsecLapiKey (or its file) are required", name)
	}
	if config.UpdateIntervalSeconds < 1 {
		return nil, fmt.Errorf("%s: updateIntervalSeconds %d: allowed: 1 or more", name, config.UpdateIntervalSeconds)
	}
	if config.CrowdsecMode == "stream" {
		streamOnce.Do(func() {
			url := config.CrowdsecLapiScheme + "://" + config.CrowdsecLapiHost + "/v1/decisions/stream"
			go stream(url, key, time.Duration(config.UpdateIntervalSeconds)*time.Second)
		})
	}
	return &passThrough{next: next}, nil
}

var streamOnce sync.Once

// stream asks for the decisions as the real plugin does, and drops them.
func stream(url, key string, every time.Duration) {
	client := &http.Client{Timeout: 5 * time.Second}
	startup := true
	for {
		request, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s?startup=%t", url, startup), nil)
		if err == nil {
			request.Header.Set("X-Api-Key", key)
			if response, err := client.Do(request); err == nil {
				response.Body.Close()
				startup = response.StatusCode != http.StatusOK
			}
		}
		time.Sleep(every)
	}
}

func (p *passThrough) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	p.next.ServeHTTP(rw, req)
}
