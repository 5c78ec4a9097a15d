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

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// releaseManifests returns install.yaml, config/default with the image set to image, and
// crds.yaml, its CRDs and admission policies (those of config/crd), from the repository at
// root. The image is set by kustomize itself
// (`kustomize edit set image`), in a temporary overlay of config/default.
func releaseManifests(kustomize, root, image string) (install, crds []byte, err error) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to resolve %s: %w", root, err)
	}
	overlay, err := os.MkdirTemp("", "flagops-release-")
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create the overlay: %w", err)
	}
	defer func() { _ = os.RemoveAll(overlay) }() // a temporary directory: a leftover is harmless
	// kustomize takes only a relative path to a base.
	base, err := filepath.Rel(overlay, filepath.Join(absRoot, "config", "default"))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to find config/default from %s: %w", overlay, err)
	}
	if err := writeFileAtomic(filepath.Join(overlay, "kustomization.yaml"), []byte("resources:\n- "+base+"\n")); err != nil {
		return nil, nil, err
	}
	// config/default names the image flagops (config/manager, config/evaluator).
	cmd := exec.Command(kustomize, "edit", "set", "image", "flagops="+image)
	cmd.Dir = overlay
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("failed to set the image %q: %w: %s", image, err, bytes.TrimSpace(out))
	}
	if install, err = kustomizeBuild(kustomize, overlay); err != nil {
		return nil, nil, err
	}
	if !bytes.Contains(install, []byte("image: "+image+"\n")) {
		return nil, nil, fmt.Errorf("-image %q: kustomize wrote another image into install.yaml", image)
	}
	crds, err = selectCRDs(install)
	if err != nil {
		return nil, nil, err
	}
	return install, crds, nil
}

// selectCRDs returns the objects of config/crd (the CRDs and the admission policies) from
// install, as install has them (with the labels of config/default), so that applying
// crds.yaml and then install.yaml changes nothing the first did.
func selectCRDs(install []byte) ([]byte, error) {
	var out [][]byte
	// kustomize build separates its objects with lines of ---.
	for _, doc := range bytes.Split(install, []byte("\n---\n")) {
		docs, err := decodeAll(bytes.NewReader(doc))
		if err != nil {
			return nil, err
		}
		if len(docs) != 1 {
			return nil, fmt.Errorf("want one object in each document of kustomize build, found %d", len(docs))
		}
		if crdKinds[str(docs[0], "kind")] {
			out = append(out, bytes.TrimSuffix(doc, []byte("\n")))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CRD in config/default")
	}
	return append(bytes.Join(out, []byte("\n---\n")), '\n'), nil
}

// writeRelease writes install.yaml and crds.yaml into out.
func writeRelease(kustomize, root, image, out string) error {
	install, crds, err := releaseManifests(kustomize, root, image)
	if err != nil {
		return err
	}
	head := "# flagops (image " + image + "), made by `make release-manifests` from %s.\n" +
		"# Apply with: kubectl apply --server-side -f %s\n"
	if err := writeFileAtomic(filepath.Join(out, "install.yaml"),
		append([]byte(fmt.Sprintf(head, "config/default", "install.yaml")), install...)); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(out, "crds.yaml"),
		append([]byte(fmt.Sprintf(head, "config/default (its CRDs and admission policies)", "crds.yaml")), crds...))
}
