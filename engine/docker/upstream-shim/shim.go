// Package shim exposes the Docker provider's SDKv2 provider, which lives in an
// internal package, to the bridge. bin/install-pulumi copies this file into the
// upstream module's copy as shim/shim.go before building.
package shim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

// NewProvider is the upstream provider as its own main builds it, minus the version string.
func NewProvider() *schema.Provider {
	return provider.New("fourlb")()
}
