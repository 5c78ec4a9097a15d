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

package localdir

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/config/crd"
)

// crdSchema validates custom resources of one kind as the API server does, from the CRD's
// OpenAPI schema: unknown fields, defaults, metadata, the schema itself, list-type
// invariants and the CEL rules (x-kubernetes-validations).
type crdSchema struct {
	kind       string
	structural *schema.Structural
	validator  validation.SchemaValidator
	cel        *cel.Validator
}

// schemas returns the validators of the three kinds, keyed by kind, built once from the
// embedded CRDs.
var schemas = sync.OnceValues(func() (map[string]*crdSchema, error) {
	return loadSchemas(crd.FS)
})

func loadSchemas(fsys fs.FS) (map[string]*crdSchema, error) {
	files, err := fs.Glob(fsys, "bases/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list CRDs: %w", err)
	}
	out := map[string]*crdSchema{}
	for _, name := range files {
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read CRD %s: %w", name, err)
		}
		var def apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(raw, &def); err != nil {
			return nil, fmt.Errorf("decode CRD %s: %w", name, err)
		}
		if def.Spec.Group != v1.GroupVersion.Group {
			continue
		}
		for i := range def.Spec.Versions {
			ver := &def.Spec.Versions[i]
			if ver.Name != v1.GroupVersion.Version || ver.Schema == nil || ver.Schema.OpenAPIV3Schema == nil {
				continue
			}
			s, err := newCRDSchema(def.Spec.Names.Kind, ver.Schema.OpenAPIV3Schema)
			if err != nil {
				return nil, fmt.Errorf("CRD %s: %w", path.Base(name), err)
			}
			out[s.kind] = s
		}
	}
	for _, kind := range []string{kindFeatureFlag, kindUserOverride, kindDeviceOverride} {
		if out[kind] == nil {
			return nil, fmt.Errorf("no CRD schema for %s %s", v1.GroupVersion, kind)
		}
	}
	return out, nil
}

func newCRDSchema(kind string, props *apiextensionsv1.JSONSchemaProps) (*crdSchema, error) {
	var internal apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(props, &internal, nil); err != nil {
		return nil, fmt.Errorf("convert schema: %w", err)
	}
	structural, err := schema.NewStructural(&internal)
	if err != nil {
		return nil, fmt.Errorf("structural schema: %w", err)
	}
	validator, _, err := validation.NewSchemaValidator(&internal)
	if err != nil {
		return nil, fmt.Errorf("schema validator: %w", err)
	}
	return &crdSchema{
		kind:       kind,
		structural: structural,
		validator:  validator,
		cel:        cel.NewValidator(structural, true, celconfig.PerCallLimit),
	}, nil
}

// unknownFields returns the paths of the fields that the schema does not know, as the API
// server's strict field validation does, and removes them from obj.
// A malformed metadata field is returned as an error.
func (c *crdSchema) unknownFields(obj map[string]any) ([]string, *field.Error) {
	opts := schema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}
	unknown := pruning.PruneWithOptions(obj, c.structural, true, opts)
	// metadata is pruned and checked by the object-meta coercion.
	err, metaUnknown := objectmeta.CoerceWithOptions(nil, obj, c.structural, true,
		objectmeta.CoerceOptions{ReturnUnknownFieldPaths: true})
	return append(unknown, metaUnknown...), err
}

// validate applies defaults and validates obj (namespace already set) as the API server does
// on create, with field paths relative to the object root.
func (c *crdSchema) validate(ctx context.Context, obj map[string]any) field.ErrorList {
	defaulting.PruneNonNullableNullsWithoutDefaults(obj, c.structural)
	defaulting.Default(obj, c.structural)

	var errs field.ErrorList
	meta, _, err := objectmeta.GetObjectMeta(obj, false)
	if err != nil {
		errs = append(errs, field.Invalid(field.NewPath("metadata"), nil, err.Error()))
	} else {
		errs = append(errs, apimachineryvalidation.ValidateObjectMeta(meta, true,
			apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)
	}
	errs = append(errs, validation.ValidateCustomResource(nil, obj, c.validator)...)
	errs = append(errs, objectmeta.Validate(ctx, nil, obj, c.structural, true)...)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, c.structural, obj)...)
	if c.cel != nil && !blocking(errs) {
		celErrs, _ := c.cel.Validate(ctx, nil, c.structural, obj, nil, celconfig.RuntimeCELCostBudget)
		errs = append(errs, celErrs...)
	}
	return errs
}

// blocking reports whether errs stop the API server from running the CEL rules, as it does
// when the object is malformed.
func blocking(errs field.ErrorList) bool {
	for _, err := range errs {
		switch err.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong,
			field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return true
		}
	}
	return false
}
