package schema

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"

	"github.com/omnibus-dev/omnibus/schemas"
	"sigs.k8s.io/yaml"
)

// AsyncAPIFile is the name of the AsyncAPI document in the embedded schemas.
const AsyncAPIFile = "asyncapi.yaml"

// asyncAPIDoc is the part of asyncapi.yaml this package reads.
type asyncAPIDoc struct {
	Channels map[string]struct {
		Address  string                     `json:"address"`
		Stream   string                     `json:"x-stream"`
		Messages map[string]asyncAPIMessage `json:"messages"`
	} `json:"channels"`
	Components struct {
		Messages map[string]asyncAPIMessage `json:"messages"`
	} `json:"components"`
	Streams map[string]struct {
		Name      string   `json:"name"`
		Subjects  []string `json:"subjects"`
		Retention string   `json:"retention"`
		MaxAge    string   `json:"max_age"`
	} `json:"x-streams"`
}

type asyncAPIMessage struct {
	Ref     string `json:"$ref"`
	CEType  string `json:"x-cloudevents-type"`
	Payload *struct {
		SchemaFormat string `json:"schemaFormat"`
		Schema       *struct {
			Ref string `json:"$ref"`
		} `json:"schema"`
	} `json:"payload"`
}

// asyncAPIJSON returns the embedded asyncapi.yaml converted to JSON.
func asyncAPIJSON() ([]byte, error) {
	y, err := fs.ReadFile(schemas.FS(), AsyncAPIFile)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return nil, fmt.Errorf("schema: %s: %w", AsyncAPIFile, err)
	}
	return j, nil
}

func readAsyncAPI() (*asyncAPIDoc, error) {
	j, err := asyncAPIJSON()
	if err != nil {
		return nil, err
	}
	var doc asyncAPIDoc
	if err := json.Unmarshal(j, &doc); err != nil {
		return nil, fmt.Errorf("schema: %s: %w", AsyncAPIFile, err)
	}
	return &doc, nil
}

// AsyncAPITypes returns the CloudEvents types named by the x-cloudevents-type of the messages of the
// embedded asyncapi.yaml (components and inline channel messages), sorted and de-duplicated. Tests of
// publishing code use it to assert that every type they publish is documented.
func AsyncAPITypes() ([]string, error) {
	doc, err := readAsyncAPI()
	if err != nil {
		return nil, err
	}
	var types []string
	add := func(m asyncAPIMessage) {
		if m.CEType != "" && !slices.Contains(types, m.CEType) {
			types = append(types, m.CEType)
		}
	}
	for _, m := range doc.Components.Messages {
		add(m)
	}
	for _, ch := range doc.Channels {
		for _, m := range ch.Messages {
			add(m)
		}
	}
	slices.Sort(types)
	return types, nil
}
