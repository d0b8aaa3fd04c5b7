// Package wire holds what both of the project's native providers need to speak
// the Pulumi resource-provider protocol: property maps on and off the wire,
// reading plain values out of secret wrappers, and turning a property diff
// into the DiffResponse the engine acts on.
package wire

import (
	"fmt"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

// marshalOptions keep unknowns (previews) and secrets (Configure says we
// accept them) and drop nulls, as pulumi-go-provider's provider.getMap and
// asStruct do (github.com/pulumi/pulumi-go-provider, provider.go).
var marshalOptions = plugin.MarshalOptions{
	KeepUnknowns:  true,
	KeepSecrets:   true,
	KeepResources: true,
	SkipNulls:     true,
}

// Unmarshal reads a property map sent by the engine.
func Unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, marshalOptions)
}

// Marshal writes a property map for the engine.
// UnmarshalOldsAndNews reads the two property maps of a Diff or an Update.
func UnmarshalOldsAndNews(olds, news *structpb.Struct) (resource.PropertyMap, resource.PropertyMap, error) {
	oldMap, err := Unmarshal(olds)
	if err != nil {
		return nil, nil, err
	}
	newMap, err := Unmarshal(news)
	return oldMap, newMap, err
}

func Marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, marshalOptions)
}

// Plain strips a secret wrapper: a secret input is still used for its value,
// and the caller decides whether the result must be secret again.
func Plain(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

// Known says whether a value (or anything inside it) is known, i.e. neither
// unknown during a preview nor an unresolved output.
func Known(v resource.PropertyValue) bool {
	return !v.ContainsUnknowns()
}

// String reads an optional string input; ok is false when it is absent or null.
func String(m resource.PropertyMap, key resource.PropertyKey) (s string, ok bool, err error) {
	v := Plain(m[key])
	if v.IsNull() {
		return "", false, nil
	}
	if !v.IsString() {
		return "", false, fmt.Errorf("%s must be a string, not %s", key, v.TypeString())
	}
	return v.StringValue(), true, nil
}

// StringMap reads an optional map of strings (keepers, environment).
func StringMap(m resource.PropertyMap, key resource.PropertyKey) (map[string]string, error) {
	v := Plain(m[key])
	if v.IsNull() {
		return nil, nil
	}
	if !v.IsObject() {
		return nil, fmt.Errorf("%s must be a map of strings, not %s", key, v.TypeString())
	}
	out := map[string]string{}
	for k, e := range v.ObjectValue() {
		e = Plain(e)
		if e.IsNull() {
			continue
		}
		if !e.IsString() {
			return nil, fmt.Errorf("%s.%s must be a string, not %s", key, k, e.TypeString())
		}
		out[string(k)] = e.StringValue()
	}
	return out, nil
}

// DiffKind maps the SDK's diff kinds onto the wire enum.
func DiffKind(k plugin.DiffKind) pulumirpc.PropertyDiff_Kind {
	switch k {
	case plugin.DiffAdd:
		return pulumirpc.PropertyDiff_ADD
	case plugin.DiffAddReplace:
		return pulumirpc.PropertyDiff_ADD_REPLACE
	case plugin.DiffDelete:
		return pulumirpc.PropertyDiff_DELETE
	case plugin.DiffDeleteReplace:
		return pulumirpc.PropertyDiff_DELETE_REPLACE
	case plugin.DiffUpdateReplace:
		return pulumirpc.PropertyDiff_UPDATE_REPLACE
	default:
		return pulumirpc.PropertyDiff_UPDATE
	}
}

// DetailedDiff lists the changed paths between two property maps (nested
// paths such as `environment.F` included), as pulumi-go-provider's
// infer/resource.go diff does: PropertyMap.Diff, then
// plugin.NewDetailedDiffFromObjectDiff. Note that PropertyMap.Diff takes an
// unknown new value as equal to any old one.
func DetailedDiff(olds, news resource.PropertyMap) map[string]plugin.PropertyDiff {
	return plugin.NewDetailedDiffFromObjectDiff(olds.Diff(news), false)
}

// DiffResponse reports the changed paths of a detailed diff, with the
// top-level keys that changed in Diffs and those whose change replaces the
// resource in Replaces (their kinds turned into the replace variants). DeleteBeforeReplace stays false: neither official provider sets it
// (pulumi-go-provider infer/resource.go diff leaves it unset;
// pulumi-terraform-bridge pkg/pf/tfbridge/provider_diff.go sets it only for
// resources declared DeleteBeforeReplace, and pulumi-random declares none).
func DiffResponse(detailed map[string]plugin.PropertyDiff, replaces func(resource.PropertyKey) bool) *pulumirpc.DiffResponse {
	changedKeys := map[string]bool{}
	replaceKeys := map[string]bool{}
	wireDiff := map[string]*pulumirpc.PropertyDiff{}
	for path, d := range detailed {
		top := TopLevelKey(path)
		changedKeys[top] = true
		if replaces(resource.PropertyKey(top)) {
			d.Kind = d.Kind.AsReplace()
			replaceKeys[top] = true
		}
		wireDiff[path] = &pulumirpc.PropertyDiff{Kind: DiffKind(d.Kind), InputDiff: d.InputDiff}
	}

	changes := pulumirpc.DiffResponse_DIFF_NONE
	if len(changedKeys) > 0 {
		changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return &pulumirpc.DiffResponse{
		Changes:             changes,
		Diffs:               sortedKeys(changedKeys),
		Replaces:            sortedKeys(replaceKeys),
		DetailedDiff:        wireDiff,
		HasDetailedDiff:     true,
		DeleteBeforeReplace: false,
	}
}

// TopLevelKey is the first element of a property path such as `keepers.k` or
// `triggers[0]`, as pulumi-go-provider's DiffResponse.rpc reduces paths.
func TopLevelKey(path string) string {
	if pp, err := resource.ParsePropertyPath(path); err == nil && len(pp) > 0 {
		if head, ok := pp[0].(string); ok {
			return head
		}
	}
	return path
}

func sortedKeys(set map[string]bool) []string {
	if len(set) == 0 {
		return nil
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// WithoutSecrets is a copy of a value with every secret wrapper removed, for
// comparing values as the Terraform bridge does (it diffs Terraform values,
// which carry no secretness).
func WithoutSecrets(v resource.PropertyValue) resource.PropertyValue {
	v = Plain(v)
	switch {
	case v.IsObject():
		out := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			out[k] = WithoutSecrets(e)
		}
		return resource.NewObjectProperty(out)
	case v.IsArray():
		out := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			out[i] = WithoutSecrets(e)
		}
		return resource.NewArrayProperty(out)
	}
	return v
}

// UnknownTypeError is what either provider answers for a resource type it
// does not implement, so a program using one fails with the type in the message.
func UnknownTypeError(provider string, urn string, implemented ...string) error {
	return fmt.Errorf("the project's %s provider does not implement resource type %q (%s); it implements only %v",
		provider, string(resource.URN(urn).Type()), urn, implemented)
}

// Type is the resource type token of a URN.
func Type(urn string) string {
	return string(resource.URN(urn).Type())
}
