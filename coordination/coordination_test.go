package coordination

import (
	"errors"
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
