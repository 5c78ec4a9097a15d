package inprocess_test

import (
	"context"
	"log"
	"os"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagops/flagops/sdk/go/inprocess"
)

// A server-side application evaluates flags for each request's user in process. The
// user's identifiers come from the application's own authentication.
func Example() {
	provider, err := inprocess.NewProvider(inprocess.Options{
		URL:       "http://127.0.0.1:8080", // the sidecar, or the evaluator's Service
		Namespace: "shop",
		Token: func(ctx context.Context) (string, error) {
			return os.Getenv("FLAGOPS_SYNC_TOKEN"), nil // scope flagops:sync
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := openfeature.SetProviderAndWait(provider); err != nil {
		log.Printf("flags: %v (serving defaults until the evaluator answers)", err)
	}
	defer openfeature.Shutdown()
	client := openfeature.NewDefaultClient()

	ctx := context.Background()
	userID, orgID, role := "user-42", "acme", "admin"

	// Per request: the user's context.
	ec := openfeature.NewEvaluationContext(userID, map[string]any{"orgId": orgID, "role": role})
	if client.Boolean(ctx, "billing.enabled", false, ec) {
		log.Print("billing is on for ", userID)
	}
	// Seed 001's helpers take the request's transaction context.
	reqCtx := openfeature.WithTransactionContext(ctx, ec)
	if info, ok := provider.OverrideInfo(reqCtx, "billing.enabled"); ok {
		log.Printf("set for %s by %s %s/%s: %s", userID, info.Kind, info.Namespace, info.Name, info.Reason)
	}
}
