package clientgen

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/ccevents/ccevents/client"
	"github.com/ccevents/ccevents/internal/engine"
)

// The Go SDK's Snapshot decodes every member the engine's sends, and
// encodes back the same JSON.
func TestTheGoSDKSnapshotKeepsEveryMemberTheEngineSends(t *testing.T) {
	var sent engine.Snapshot
	n := 0
	fillEveryField(reflect.ValueOf(&sent).Elem(), &n)
	wire, err := json.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	var got client.Snapshot
	if err := json.Unmarshal(wire, &got); err != nil {
		t.Fatalf("decode the engine's snapshot: %v", err)
	}
	back, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var want, have any
	if err := json.Unmarshal(wire, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(back, &have); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, have) {
		t.Errorf("the SDK's Snapshot loses or changes members:\nengine: %s\nSDK:    %s", wire, back)
	}
}

// fillEveryField gives every exported field of v a distinct non-zero
// value, so every JSON member is present and none can stand for another.
func fillEveryField(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillEveryField(v.Elem(), n)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillEveryField(v.Field(i), n)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillEveryField(v.Index(0), n)
	case reflect.String:
		v.SetString(fmt.Sprintf("v%d", *n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.5)
	case reflect.Bool:
		v.SetBool(true)
	}
}
