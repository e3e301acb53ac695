package coordination

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestValidateTopicName(t *testing.T) {
	for _, name := range []string{"a", "A-b_c.d", "__consumer_offsets", "...", strings.Repeat("x", MaxTopicNameLength)} {
		if err := ValidateTopicName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "a b", "a/b", "ü", "a\x00", strings.Repeat("x", MaxTopicNameLength+1)} {
		if err := ValidateTopicName(name); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("%q: %v, want ErrInvalidTopic", name, err)
		}
	}
}

func TestTopicCollisionName(t *testing.T) {
	if TopicCollisionName("a.b_c") != TopicCollisionName("a_b.c") || TopicCollisionName("a.b") == TopicCollisionName("ab") {
		t.Error("collision names wrong")
	}
}

func TestValidateConfigs(t *testing.T) {
	bad := errors.New("bad value")
	var got map[string]string
	validate := func(m map[string]string) error {
		got = m
		if m["retention.ms"] == "x" {
			return bad
		}
		return nil
	}
	good := map[string]string{"retention.ms": "1"}
	if err := ValidateConfigs(validate, good); err != nil || !maps.Equal(got, good) {
		t.Errorf("good configs: %v, validator saw %v", err, got)
	}
	err := ValidateConfigs(validate, map[string]string{"retention.ms": "x"})
	if !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, bad) {
		t.Errorf("bad configs: %v, want ErrInvalidConfig and the validator's error", err)
	}
	if err := ValidateConfigs(nil, map[string]string{"retention.ms": "x"}); err != nil {
		t.Errorf("nil validator: %v, want every config accepted", err)
	}
}

func TestCloneConfigs(t *testing.T) {
	if CloneConfigs(nil) != nil || CloneConfigs(map[string]string{}) != nil {
		t.Error("no overrides: want nil")
	}
	m := map[string]string{"retention.ms": "1"}
	c := CloneConfigs(m)
	m["retention.ms"] = "2"
	if c["retention.ms"] != "1" || len(c) != 1 {
		t.Errorf("clone %v follows the original", c)
	}
}
