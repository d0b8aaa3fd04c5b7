// pulumi-resource-docker built here: kreuzwerker's Terraform Docker provider bridged
// to Pulumi with pulumi-terraform-bridge, under the tokens and names that the Python
// SDK pulumi_docker sends, plus the SDK's one native resource (image.go). The released
// plugin is put together the same way; the ways this one differs are listed in
// docs/engine.md.
package main

import (
	"context"
	"encoding/json"
	"os"
	"runtime"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/pkg/v3/resource/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/terraform-providers/terraform-provider-docker/shim"
)

// version is the pulumi_docker package this plugin answers for (requirements.txt);
// bin/install-pulumi sets it with -ldflags.
var version = "0.0.0"

func main() {
	info := providerInfo()
	// as the released plugin: the provider's schema and mappings as JSON, which
	// tests read (which inputs force a replacement)
	if len(os.Args) == 2 && os.Args[1] == "-get-provider-info" {
		if err := json.NewEncoder(os.Stdout).Encode(tfbridge.MarshalProviderInfo(&info)); err != nil {
			cmdutil.ExitError(err.Error())
		}
		return
	}
	info.P.InitLogging(context.Background())
	err := provider.Main("docker", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		bridged := tfbridge.NewProvider(context.Background(), host, "docker", version, info.P, info, nil)
		return &hybrid{ResourceProviderServer: bridged, images: &imageProvider{host: host}}, nil
	})
	if err != nil {
		cmdutil.ExitError(err.Error())
	}
}

func providerInfo() tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:       shimv2.NewProvider(shim.NewProvider()),
		Name:    "docker",
		Version: version,
		Config: map[string]*tfbridge.SchemaInfo{
			// as the released plugin: DOCKER_HOST, else the local socket
			"host": {Default: &tfbridge.DefaultInfo{
				EnvVars: []string{"DOCKER_HOST"},
				ComputeDefault: func(context.Context, tfbridge.ComputeDefaultOptions) (interface{}, error) {
					if runtime.GOOS == "windows" {
						return "npipe:////./pipe/docker_engine", nil
					}
					return "unix:///var/run/docker.sock", nil
				},
			}},
			"registry_auth": {Name: "registryAuth", MaxItemsOne: tfbridge.False()},
		},
		// The SDK's names where they are not the bridge's automatic ones.
		Resources: map[string]*tfbridge.ResourceInfo{
			"docker_config": {Tok: "docker:index/serviceConfig:ServiceConfig"},
			"docker_container": {
				Tok: "docker:index/container:Container",
				// a replaced container goes first unless the program says otherwise
				// (the released plugin's default too)
				DeleteBeforeReplace: true,
				Fields: map[string]*tfbridge.SchemaInfo{
					"command":           {Name: "command"},
					"networks_advanced": {Name: "networksAdvanced"},
				},
			},
			"docker_image": {
				Tok:    "docker:index/remoteImage:RemoteImage",
				Fields: map[string]*tfbridge.SchemaInfo{"name": {Name: "name"}},
			},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"docker_image": {Tok: "docker:index/getRemoteImage:getRemoteImage"},
		},
	}
	// every other resource and data source: docker_<name> -> docker:index/<name>:<Name>
	info.MustComputeTokens(tokens.SingleModule("docker_", "index", tokens.MakeStandard("docker")))
	return info
}
