package evaluator_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/flagops/flagops/evaluator"
)

func Example() {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	store := evaluator.NewStore(evaluator.WithClock(evaluator.ClockFunc(func() time.Time { return now })))

	expires := now.Add(time.Hour)
	_, changes, err := store.Apply(
		evaluator.UpsertFlag("shop", "new-checkout", evaluator.FlagSpec{
			Type:    evaluator.TypeBoolean,
			Enabled: true,
			Rollout: &evaluator.Rollout{Percentage: 25},
		}),
		evaluator.UpsertOverride(evaluator.Override{
			Kind: evaluator.SubjectUser, SubjectID: "alice",
			Namespace: "shop", Name: "alice-beta", CreatedAt: now, Enabled: true,
			ExpiresAt: &expires, Reason: "beta tester",
			Entries: []evaluator.OverrideEntry{{Key: "new-checkout", Value: json.RawMessage(`true`)}},
		}),
	)
	if err != nil {
		panic(err)
	}
	fmt.Println("revision", changes.Revision, "flags", changes.Flags, "subjects", changes.Subjects)

	shop := store.Namespace("shop")
	for _, user := range []string{"alice", "bob", "mallory"} {
		r := shop.Evaluate(evaluator.Context{UserID: user}, "new-checkout")
		fmt.Println(user, r.Value, r.Reason, r.Source)
	}
	fmt.Println(shop.IsEnabled("missing", evaluator.Context{}, true))
	// Output:
	// revision 1 flags [{shop new-checkout}] subjects [{shop user alice new-checkout}]
	// alice true TARGETING_MATCH user-override:shop/alice-beta
	// bob false SPLIT rollout
	// mallory true SPLIT rollout
	// true
}

func ExampleConfig() {
	store := evaluator.NewStore()
	_, _, err := store.Apply(evaluator.UpsertFlag("shop", "limits", evaluator.FlagSpec{
		Type:    evaluator.TypeObject,
		Enabled: true,
		Value:   json.RawMessage(`{"maxItems": 50}`),
		Schema:  json.RawMessage(`{"type":"object","properties":{"maxItems":{"type":"integer","minimum":1}}}`),
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	type limits struct {
		MaxItems int `json:"maxItems"`
	}
	l := evaluator.Config(store.Namespace("shop"), "limits", evaluator.Context{}, limits{MaxItems: 10})
	fmt.Println(l.MaxItems)
	// Output: 50
}
