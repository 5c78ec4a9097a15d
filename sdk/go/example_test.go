package flagops_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	flagops "github.com/flagops/flagops/sdk/go"
)

// An application that evaluates flags for its signed-in user, with a context token
// from its backend, and re-reads a flag when it changes. (docs/sdk.md shows this
// example; it is compiled, not run, by go test.)
func Example() {
	ctx := context.Background()
	provider, err := flagops.NewProvider(flagops.Options{
		URL:       "https://flags.example.com",
		Namespace: "shop",
		// Called before connecting and again after a 401.
		Token: func(ctx context.Context) (string, error) {
			return os.Getenv("FLAGOPS_TOKEN"), nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// The provider holds the values of the global evaluation context (with context
	// tokens, the evaluator reads the context from the token).
	openfeature.SetEvaluationContext(openfeature.NewEvaluationContext("user-42", map[string]any{"role": "admin"}))
	initCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := openfeature.SetProviderWithContextAndWait(initCtx, provider); err != nil {
		log.Printf("flags: %v (serving defaults until the evaluator answers)", err)
	}
	defer openfeature.Shutdown()

	client := openfeature.NewDefaultClient()
	onChange := func(d openfeature.EventDetails) {
		log.Printf("flags changed: %v", d.FlagChanges)
	}
	client.AddHandler(openfeature.ProviderConfigChange, &onChange)

	// From memory: no request.
	if client.Boolean(ctx, "billing.enabled", false, openfeature.EvaluationContext{}) {
		log.Print("billing is on")
	}
	limits := client.Object(ctx, "billing.free_tier_limits", map[string]any{"maxStudents": 1.0}, openfeature.EvaluationContext{})
	log.Printf("limits: %v", limits)

	// Seed 001's helpers.
	if info, ok := provider.OverrideInfo(ctx, "billing.enabled"); ok {
		log.Printf("billing.enabled is set for you by %s override %s/%s: %s", info.Kind, info.Namespace, info.Name, info.Reason)
	}
	all, err := provider.UserFlags(ctx)
	if err == nil {
		log.Printf("%d flags", len(all))
	}
}
