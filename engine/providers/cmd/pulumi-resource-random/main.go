// pulumi-resource-random is the project's own native stand-in for the random
// provider (pulumi-random 4.21.4, a Terraform bridge over
// hashicorp/terraform-provider-random). It implements the two resources the
// project uses, RandomPassword and RandomId, with the semantics of
// terraform-provider-random's internal/provider/resource_password.go,
// resource_id.go and internal/random/string.go, seen through the bridge
// (pulumi-terraform-bridge pkg/pf/tfbridge/provider_*.go).
//
// Every input of both resources is ForceNew upstream (RequiresReplace plan
// modifiers), so any input change replaces; the two exceptions upstream makes
// (a keepers map that gains or loses only null values, overrideSpecial going
// from "" to absent) update the state in place instead.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/types/known/emptypb"

	"fourlb.local/engine/providers/internal/wire"
)

// version is the pulumi-random release whose Python SDK the project pins
// (pulumi_random 4.21.4 asks the engine for this plugin version).
var version = "4.21.4"

const (
	passwordType = "random:index/randomPassword:RandomPassword"
	idType       = "random:index/randomId:RandomId"
)

func main() {
	err := provider.Main("random", func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newServer(), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// randomResource is what differs between the two resources.
type randomResource struct {
	// inputs are the resource's input properties (all ForceNew upstream).
	inputs []resource.PropertyKey
	// check validates inputs as upstream's schema validators do.
	check func(news resource.PropertyMap) []*pulumirpc.CheckFailure
	// planned returns the inputs as upstream plans them: the given values,
	// with schema defaults for optional+computed inputs left out.
	planned func(news resource.PropertyMap) (resource.PropertyMap, error)
	// generate makes the random values: the resource ID and the outputs
	// added to the planned inputs.
	generate func(planned resource.PropertyMap) (resource.ID, resource.PropertyMap, error)
	// generated lists the outputs generate adds, unknown during a preview.
	generated []resource.PropertyKey
	// secretOutputs are upstream's Sensitive attributes, secret in Pulumi.
	secretOutputs map[resource.PropertyKey]bool
}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	resources map[string]randomResource
}

func newServer() *server {
	return &server{resources: map[string]randomResource{
		passwordType: passwordResource(),
		idType:       idResource(),
	}}
}

func (s *server) resourceFor(urn string) (randomResource, error) {
	r, ok := s.resources[wire.Type(urn)]
	if !ok {
		return randomResource{}, wire.UnknownTypeError("random", urn, passwordType, idType)
	}
	return r, nil
}

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (s *server) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	// The provider has no configuration; secrets arrive wrapped so they stay
	// secret when echoed back.
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true}, nil
}

// Check validates and returns the inputs unchanged: the bridge adds no
// defaults at Check (pkg/pf/tfbridge/provider_check.go; upstream's defaults
// appear in the planned state, i.e. in the outputs).
func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	r, err := s.resourceFor(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := wire.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: r.check(news)}, nil
}

// Diff compares the prior state with the new inputs as planned, as the
// bridge does (pkg/pf/tfbridge/provider_diff.go: PlanResourceChange, then
// prior state vs planned state), so giving a default explicitly changes nothing.
func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	r, err := s.resourceFor(req.GetUrn())
	if err != nil {
		return nil, err
	}
	olds, news, err := wire.UnmarshalOldsAndNews(req.GetOlds(), req.GetNews())
	if err != nil {
		return nil, err
	}
	planned, err := r.planned(news)
	if err != nil {
		return nil, err
	}
	oldInputs, newInputs := resource.PropertyMap{}, resource.PropertyMap{}
	for _, k := range r.inputs {
		if v, ok := olds[k]; ok && !v.IsNull() {
			oldInputs[k] = wire.WithoutSecrets(v)
		}
		if v, ok := planned[k]; ok && !v.IsNull() {
			newInputs[k] = wire.WithoutSecrets(v)
		}
	}
	detailed := wire.DetailedDiff(oldInputs, newInputs)
	// An unknown input is a change (Terraform plans it unknown, unlike the
	// value in the state), which PropertyMap.Diff does not count.
	for k, v := range newInputs {
		if !wire.Known(v) {
			detailed[string(k)] = plugin.PropertyDiff{Kind: plugin.DiffUpdate}
		}
	}
	return wire.DiffResponse(detailed, func(k resource.PropertyKey) bool {
		return requiresReplace(k, oldInputs[k], newInputs[k])
	}), nil
}

// requiresReplace applies upstream's plan modifiers to one changed input.
func requiresReplace(key resource.PropertyKey, old, new resource.PropertyValue) bool {
	switch key {
	case "keepers":
		// mapplanmodifiers.RequiresReplaceIfValuesNotNull
		// (internal/planmodifiers/map/mapplanmodifiers.go): keys with null
		// values do not count, so {} and absent keepers are the same.
		if !wire.Known(new) {
			return len(nonNullEntries(old)) > 0
		}
		return !resource.NewObjectProperty(nonNullEntries(old)).DeepEquals(resource.NewObjectProperty(nonNullEntries(new)))
	case "overrideSpecial":
		// RequiresReplaceUnlessEmptyStringToNull
		// (internal/planmodifiers/string/stringplanmodifier.go).
		return !(new.IsNull() && old.IsString() && old.StringValue() == "")
	}
	return true
}

func nonNullEntries(v resource.PropertyValue) resource.PropertyMap {
	out := resource.PropertyMap{}
	if v.IsObject() {
		for k, e := range v.ObjectValue() {
			if !e.IsNull() {
				out[k] = e
			}
		}
	}
	return out
}

// Create returns the planned inputs plus the generated values; in a preview
// the generated values are unknown, as in the bridge's planned state.
func (s *server) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	r, err := s.resourceFor(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := wire.Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if failures := r.check(news); len(failures) > 0 {
		return nil, fmt.Errorf("invalid inputs for %s: %s: %s", req.GetUrn(), failures[0].Property, failures[0].Reason)
	}
	outputs, err := r.planned(news)
	if err != nil {
		return nil, err
	}
	var id resource.ID
	if req.GetPreview() {
		for _, k := range append(r.generated, "id") {
			outputs[k] = resource.MakeComputed(resource.NewStringProperty(""))
		}
	} else {
		var generated resource.PropertyMap
		if id, generated, err = r.generate(outputs); err != nil {
			return nil, err
		}
		for k, v := range generated {
			outputs[k] = v
		}
		// The bridge keeps Terraform's id attribute among the outputs
		// (pkg/pf/tfbridge/ids.go extractID reads it from there).
		outputs["id"] = resource.NewStringProperty(string(id))
	}
	for k := range r.secretOutputs {
		if v, ok := outputs[k]; ok && !v.IsSecret() {
			outputs[k] = resource.MakeSecret(v)
		}
	}
	props, err := wire.Marshal(outputs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: string(id), Properties: props}, nil
}

// Update is reached only for the changes that do not replace (see
// requiresReplace): upstream's Update copies the plan into the state, keeping
// the generated values.
func (s *server) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	r, err := s.resourceFor(req.GetUrn())
	if err != nil {
		return nil, err
	}
	olds, news, err := wire.UnmarshalOldsAndNews(req.GetOlds(), req.GetNews())
	if err != nil {
		return nil, err
	}
	planned, err := r.planned(news)
	if err != nil {
		return nil, err
	}
	outputs := olds.Copy()
	for _, k := range r.inputs {
		delete(outputs, k)
		if v, ok := planned[k]; ok {
			outputs[k] = v
		}
	}
	props, err := wire.Marshal(outputs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

// Read keeps the state: upstream's Read is empty for both resources.
func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if _, err := s.resourceFor(req.GetUrn()); err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

// Delete does nothing: nothing exists outside the state.
func (s *server) Delete(_ context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if _, err := s.resourceFor(req.GetUrn()); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// ---- inputs ----------------------------------------------------------------

// intInput reads an optional integer input. known is false for an unknown
// value (a preview), which is not validated.
func intInput(m resource.PropertyMap, key resource.PropertyKey) (n int64, present, known bool, err error) {
	v := wire.Plain(m[key])
	switch {
	case v.IsNull():
		return 0, false, true, nil
	case !wire.Known(v):
		return 0, true, false, nil
	case !v.IsNumber() || v.NumberValue() != math.Trunc(v.NumberValue()):
		return 0, true, true, fmt.Errorf("must be an integer, not %v", v)
	}
	return int64(v.NumberValue()), true, true, nil
}

// boolInput reads an optional boolean input, with def when absent.
func boolInput(m resource.PropertyMap, key resource.PropertyKey, def bool) (b, present, known bool, err error) {
	v := wire.Plain(m[key])
	switch {
	case v.IsNull():
		return def, false, true, nil
	case !wire.Known(v):
		return def, true, false, nil
	case !v.IsBool():
		return def, true, true, fmt.Errorf("must be a boolean, not %v", v)
	}
	return v.BoolValue(), true, true, nil
}

func failure(key resource.PropertyKey, format string, args ...any) *pulumirpc.CheckFailure {
	return &pulumirpc.CheckFailure{Property: string(key), Reason: fmt.Sprintf(format, args...)}
}

// checkStringInputs checks the optional string and map-of-string inputs.
func checkStringInputs(news resource.PropertyMap, strings ...resource.PropertyKey) []*pulumirpc.CheckFailure {
	var failures []*pulumirpc.CheckFailure
	if wire.Known(news["keepers"]) {
		if _, err := wire.StringMap(news, "keepers"); err != nil {
			failures = append(failures, failure("keepers", "%v", err))
		}
	}
	for _, k := range strings {
		if wire.Known(news[k]) {
			if _, _, err := wire.String(news, k); err != nil {
				failures = append(failures, failure(k, "%v", err))
			}
		}
	}
	return failures
}

// ---- RandomPassword ----------------------------------------------------------

var (
	passwordBools = []resource.PropertyKey{"special", "upper", "lower"}
	passwordMins  = []resource.PropertyKey{"minUpper", "minLower", "minNumeric", "minSpecial"}
)

// passwordResource follows internal/provider/resource_password.go (schema V3).
func passwordResource() randomResource {
	return randomResource{
		inputs: []resource.PropertyKey{
			"keepers", "length", "special", "upper", "lower", "number", "numeric",
			"minNumeric", "minUpper", "minLower", "minSpecial", "overrideSpecial",
		},
		check:         checkPassword,
		planned:       plannedPassword,
		generate:      generatePassword,
		generated:     []resource.PropertyKey{"result", "bcryptHash"},
		secretOutputs: map[resource.PropertyKey]bool{"result": true, "bcryptHash": true},
	}
}

// checkPassword applies the schema's validators: length is required, at least
// 1 and at least the sum of the minimums; number and numeric agree; when all
// four character classes are configured one of them is true.
func checkPassword(news resource.PropertyMap) []*pulumirpc.CheckFailure {
	failures := checkStringInputs(news, "overrideSpecial")

	length, hasLength, lengthKnown, lengthErr := intInput(news, "length")
	switch {
	case lengthErr != nil:
		failures = append(failures, failure("length", "%v", lengthErr))
	case !hasLength:
		failures = append(failures, failure("length", "missing required property 'length'"))
	case lengthKnown && length < 1:
		failures = append(failures, failure("length", "length must be at least 1, got %d", length))
	}

	var sumOfMins int64
	minsKnown := true
	for _, k := range passwordMins {
		n, _, known, err := intInput(news, k)
		switch {
		case err != nil:
			failures = append(failures, failure(k, "%v", err))
		case n < 0:
			failures = append(failures, failure(k, "%s must not be negative, got %d", k, n))
		}
		sumOfMins += n
		minsKnown = minsKnown && known
	}
	if hasLength && lengthKnown && minsKnown && lengthErr == nil && length < sumOfMins {
		failures = append(failures, failure("length",
			"length must be at least minUpper + minLower + minNumeric + minSpecial (%d), got %d", sumOfMins, length))
	}

	allConfiguredFalse := true
	for _, k := range append(passwordBools, "number", "numeric") {
		b, present, known, err := boolInput(news, k, true)
		if err != nil {
			failures = append(failures, failure(k, "%v", err))
		}
		if k == "number" || k == "numeric" {
			continue
		}
		allConfiguredFalse = allConfiguredFalse && present && known && !b
	}
	numeric, err := numericSetting(news)
	if err != nil {
		failures = append(failures, failure("numeric", "%v", err))
	} else if allConfiguredFalse && numeric.configured && numeric.known && !numeric.value {
		failures = append(failures, failure("numeric",
			"at least one of numeric, upper, lower and special must be true"))
	}
	return failures
}

// numericSetting resolves the deprecated number and its replacement numeric
// as boolplanmodifiers.NumberNumericAttributePlanModifier does
// (internal/planmodifiers/bool/boolplanmodifiers.go): equal if both given,
// either one's value if one is given, true if neither.
type numericValue struct {
	value, configured, known bool
	from                     resource.PropertyKey // the input it comes from, "" for the default
}

func numericSetting(news resource.PropertyMap) (numericValue, error) {
	number, hasNumber, numberKnown, err1 := boolInput(news, "number", true)
	numeric, hasNumeric, numericKnown, err2 := boolInput(news, "numeric", true)
	if err := errors.Join(err1, err2); err != nil {
		return numericValue{}, err
	}
	switch {
	case hasNumber && hasNumeric:
		if numberKnown && numericKnown && number != numeric {
			return numericValue{}, errors.New("number and numeric are both configured with different values " +
				"(number is deprecated, use numeric instead)")
		}
		return numericValue{value: numeric, configured: true, known: numericKnown, from: "numeric"}, nil
	case hasNumeric:
		return numericValue{value: numeric, configured: true, known: numericKnown, from: "numeric"}, nil
	case hasNumber:
		return numericValue{value: number, configured: true, known: numberKnown, from: "number"}, nil
	}
	return numericValue{value: true, known: true}, nil
}

// plannedPassword: the inputs as given, and the schema defaults for the
// absent ones (special, upper, lower, number and numeric true; the minimums 0).
func plannedPassword(news resource.PropertyMap) (resource.PropertyMap, error) {
	planned := resource.PropertyMap{}
	for _, k := range []resource.PropertyKey{"keepers", "length", "overrideSpecial"} {
		if v, ok := news[k]; ok && !v.IsNull() {
			planned[k] = v
		}
	}
	for _, k := range passwordBools {
		planned[k] = resource.NewBoolProperty(true)
		if v, ok := news[k]; ok && !v.IsNull() {
			planned[k] = v
		}
	}
	for _, k := range passwordMins {
		planned[k] = resource.NewNumberProperty(0)
		if v, ok := news[k]; ok && !v.IsNull() {
			planned[k] = v
		}
	}
	numeric, err := numericSetting(news)
	if err != nil {
		return nil, err
	}
	numericValue := resource.NewBoolProperty(numeric.value)
	if numeric.from != "" {
		numericValue = news[numeric.from]
	}
	planned["number"], planned["numeric"] = numericValue, numericValue
	return planned, nil
}

// generatePassword: internal/random/string.go CreateString for the result,
// and resource_password.go generateHash for bcryptHash; the resource ID is
// upstream's constant "none".
func generatePassword(planned resource.PropertyMap) (resource.ID, resource.PropertyMap, error) {
	var params passwordParams
	var errs []error
	read := func(key resource.PropertyKey, into *bool) {
		b, _, _, err := boolInput(planned, key, true)
		*into = b
		errs = append(errs, err)
	}
	readInt := func(key resource.PropertyKey, into *int64) {
		n, _, _, err := intInput(planned, key)
		*into = n
		errs = append(errs, err)
	}
	read("upper", &params.upper)
	read("lower", &params.lower)
	read("numeric", &params.numeric)
	read("special", &params.special)
	readInt("length", &params.length)
	readInt("minUpper", &params.minUpper)
	readInt("minLower", &params.minLower)
	readInt("minNumeric", &params.minNumeric)
	readInt("minSpecial", &params.minSpecial)
	overrideSpecial, _, err := wire.String(planned, "overrideSpecial")
	params.overrideSpecial = overrideSpecial
	if err := errors.Join(append(errs, err)...); err != nil {
		return "", nil, err
	}

	result, err := randomString(params)
	if err != nil {
		return "", nil, err
	}
	hash, err := bcryptHash(result)
	if err != nil {
		return "", nil, err
	}
	return "none", resource.PropertyMap{
		"result":     resource.NewStringProperty(result),
		"bcryptHash": resource.NewStringProperty(hash),
	}, nil
}

type passwordParams struct {
	length                                     int64
	upper, lower, numeric, special             bool
	minUpper, minLower, minNumeric, minSpecial int64
	overrideSpecial                            string
}

const (
	upperChars          = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lowerChars          = "abcdefghijklmnopqrstuvwxyz"
	numericChars        = "0123456789"
	defaultSpecialChars = "!@#$%&*()-_=+[]{}<>:?"
)

// randomString has CreateString's semantics: the result draws from the
// enabled classes; each minimum is met from its own class whether or not the
// class is enabled (upstream does the same); overrideSpecial replaces the
// special characters; the characters are then shuffled. Lengths count runes.
func randomString(p passwordParams) (string, error) {
	special := defaultSpecialChars
	if p.overrideSpecial != "" {
		special = p.overrideSpecial
	}
	pool := ""
	if p.upper {
		pool += upperChars
	}
	if p.lower {
		pool += lowerChars
	}
	if p.numeric {
		pool += numericChars
	}
	if p.special {
		pool += special
	}
	if pool == "" {
		return "", errors.New("the character set specified is empty")
	}

	var result []rune
	for _, class := range []struct {
		chars string
		min   int64
	}{{upperChars, p.minUpper}, {lowerChars, p.minLower}, {numericChars, p.minNumeric}, {special, p.minSpecial}} {
		picked, err := randomRunes(class.chars, class.min)
		if err != nil {
			return "", err
		}
		result = append(result, picked...)
	}
	rest, err := randomRunes(pool, p.length-int64(len(result)))
	if err != nil {
		return "", err
	}
	result = append(result, rest...)

	// Fisher-Yates with a cryptographic source, so the minimums are not
	// grouped at the start.
	for i := len(result) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		result[i], result[j.Int64()] = result[j.Int64()], result[i]
	}
	return string(result), nil
}

func randomRunes(chars string, n int64) ([]rune, error) {
	set := []rune(chars)
	if n <= 0 {
		return nil, nil
	}
	out := make([]rune, n)
	for i := range out {
		idx, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			return nil, err
		}
		out[i] = set[idx.Int64()]
	}
	return out, nil
}

// bcryptHash hashes at most the first 72 bytes, bcrypt's limit, at the
// default cost, as upstream's generateHash does.
func bcryptHash(s string) (string, error) {
	b := []byte(s)
	if len(b) > 72 {
		b = b[:72]
	}
	hash, err := bcrypt.GenerateFromPassword(b, bcrypt.DefaultCost)
	return string(hash), err
}

// ---- RandomId ----------------------------------------------------------------

// idResource follows internal/provider/resource_id.go.
func idResource() randomResource {
	return randomResource{
		inputs:    []resource.PropertyKey{"keepers", "byteLength", "prefix"},
		check:     checkID,
		planned:   plannedID,
		generate:  generateID,
		generated: []resource.PropertyKey{"b64Url", "b64Std", "hex", "dec"},
	}
}

func checkID(news resource.PropertyMap) []*pulumirpc.CheckFailure {
	failures := checkStringInputs(news, "prefix")
	n, present, known, err := intInput(news, "byteLength")
	switch {
	case err != nil:
		failures = append(failures, failure("byteLength", "%v", err))
	case !present:
		failures = append(failures, failure("byteLength", "missing required property 'byteLength'"))
	case known && n < 1:
		failures = append(failures, failure("byteLength", "byteLength must be at least 1, got %d", n))
	}
	return failures
}

// plannedID: RandomId has no defaults, its planned inputs are the inputs.
func plannedID(news resource.PropertyMap) (resource.PropertyMap, error) {
	planned := resource.PropertyMap{}
	for _, k := range []resource.PropertyKey{"keepers", "byteLength", "prefix"} {
		if v, ok := news[k]; ok && !v.IsNull() {
			planned[k] = v
		}
	}
	return planned, nil
}

// generateID: byteLength random bytes; the ID is their unpadded URL-safe
// base64 without the prefix, each output is the prefix followed by an encoding
// of the bytes (b64Url unpadded URL-safe, b64Std padded standard base64, hex,
// dec the unsigned big-endian integer in decimal).
func generateID(planned resource.PropertyMap) (resource.ID, resource.PropertyMap, error) {
	n, _, _, err := intInput(planned, "byteLength")
	if err != nil {
		return "", nil, err
	}
	prefix, _, err := wire.String(planned, "prefix")
	if err != nil {
		return "", nil, err
	}
	bytes := make([]byte, n)
	if _, err := rand.Read(bytes); err != nil {
		return "", nil, err
	}
	id := base64.RawURLEncoding.EncodeToString(bytes)
	return resource.ID(id), resource.PropertyMap{
		"b64Url": resource.NewStringProperty(prefix + id),
		"b64Std": resource.NewStringProperty(prefix + base64.StdEncoding.EncodeToString(bytes)),
		"hex":    resource.NewStringProperty(prefix + hex.EncodeToString(bytes)),
		"dec":    resource.NewStringProperty(prefix + new(big.Int).SetBytes(bytes).String()),
	}, nil
}
