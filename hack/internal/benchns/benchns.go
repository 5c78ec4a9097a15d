/*
Copyright 2026 The flagops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package benchns is the namespace the scale benchmarks serve (hack/fanout,
// hack/scale/storm): 100 flags, 10 of them with two rules each, 15 with rollouts, the
// rest static (Boolean, String, Object, Number). FlipKey is a plain Boolean flag the
// benchmarks turn on and off; every stream sees it.
package benchns

import (
	"fmt"
	"path/filepath"
	"strconv"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/adapt"
	"github.com/flagops/flagops/internal/atomicfile"
)

const (
	// Namespace is the namespace of the flags.
	Namespace = "bench"
	// FlipKey is the Boolean flag the benchmarks flip.
	FlipKey = "fanout.flag"
)

func flag(name string, spec v1.FeatureFlagSpec) v1.FeatureFlag {
	return v1.FeatureFlag{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "FeatureFlag"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace},
		Spec:       spec,
	}
}

func raw(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }

// Flip returns FlipKey, on or off.
func Flip(enabled bool) v1.FeatureFlag {
	return flag(FlipKey, v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: enabled})
}

// Flags returns the 100 flags, FlipKey off first. Object values have their keys sorted,
// as a manifest's YAML has them.
func Flags() []v1.FeatureFlag {
	flags := []v1.FeatureFlag{Flip(false)}
	for i := range 99 {
		var spec v1.FeatureFlagSpec
		switch {
		case i < 10: // rules on org and plan
			spec = v1.FeatureFlagSpec{Type: v1.FlagTypeString, Enabled: true, Value: raw(`"standard"`),
				OffValue: raw(`"off"`), Rules: []v1.Rule{
					{Name: "internal", Match: []v1.Condition{{Attribute: evaluator.AttrOrgID, Operator: v1.OperatorIn, Values: []string{"org-internal", "org-beta"}}}, Value: raw(`"beta"`)},
					{Name: "pro", Match: []v1.Condition{{Attribute: "plan", Operator: v1.OperatorIn, Values: []string{"pro", "enterprise"}}}, Value: raw(`"pro"`)},
				}}
		case i < 25:
			spec = v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true, Rollout: &v1.Rollout{Percentage: int32(i * 4)}}
		case i < 45:
			spec = v1.FeatureFlagSpec{Type: v1.FlagTypeString, Enabled: i%3 != 0, Value: raw(`"variant-` + strconv.Itoa(i) + `"`), OffValue: raw(`"classic"`)}
		case i < 55:
			spec = v1.FeatureFlagSpec{Type: v1.FlagTypeObject, Enabled: true, Value: raw(`{"historyLimit":5,"label":"tier ` + strconv.Itoa(i) + `","maxItems":` + strconv.Itoa(i) + `}`)}
		case i < 60:
			spec = v1.FeatureFlagSpec{Type: v1.FlagTypeNumber, Enabled: true, Value: raw(strconv.Itoa(i * 10))}
		default:
			spec = v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: i%2 == 0}
		}
		flags = append(flags, flag(fmt.Sprintf("flag.%02d", i), spec))
	}
	return flags
}

// Store returns a store holding the flags.
func Store() (*evaluator.Store, error) {
	flags := Flags()
	ops := make([]evaluator.Op, 0, len(flags))
	for i := range flags {
		ops = append(ops, adapt.UpsertFlag(&flags[i]))
	}
	s := evaluator.NewStore()
	if _, _, err := s.Apply(ops...); err != nil {
		return nil, fmt.Errorf("applying the bench namespace: %w", err)
	}
	return s, nil
}

// WriteDir writes the flags into dir as manifests for `flagops serve --dir`, one file
// each, FlipKey's in FlipFile.
func WriteDir(dir string) error {
	for _, f := range Flags() {
		if err := writeFlag(filepath.Join(dir, f.Name+".yaml"), f); err != nil {
			return err
		}
	}
	return nil
}

// FlipFile is the name of FlipKey's manifest in a directory written by WriteDir.
const FlipFile = FlipKey + ".yaml"

// WriteFlip rewrites FlipKey's manifest in dir, on or off, atomically.
func WriteFlip(dir string, enabled bool) error {
	return writeFlag(filepath.Join(dir, FlipFile), Flip(enabled))
}

func writeFlag(path string, f v1.FeatureFlag) error {
	b, err := yaml.Marshal(f)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", f.Name, err)
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
