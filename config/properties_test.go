package config

import (
	"reflect"
	"testing"
)

func TestParseProperties(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want []property
	}{
		{"equals", "a=1\nb = 2 \n", []property{{"a", "1", 1}, {"b", "2", 2}}},
		{"colon", "a:1\nb : 2", []property{{"a", "1", 1}, {"b", "2", 2}}},
		{"whitespace separator", "a 1\nb\t\t2", []property{{"a", "1", 1}, {"b", "2", 2}}},
		{"comments and blanks", "# c\n! c\n\n   \n  # indented\na=1", []property{{"a", "1", 6}}},
		{"escaped trailing space kept", "a=x\\ \nb=y \t", []property{{"a", "x ", 1}, {"b", "y", 2}}},
		{"no value", "a\nb=", []property{{"a", "", 1}, {"b", "", 2}}},
		{"value keeps separators", "a=b=c:d", []property{{"a", "b=c:d", 1}}},
		{"continuation", "a=1,\\\n    2,\\\n\t3\nb=4", []property{{"a", "1,2,3", 1}, {"b", "4", 4}}},
		{"escaped backslash is not continuation", "a=x\\\\\nb=y", []property{{"a", `x\`, 1}, {"b", "y", 2}}},
		{"comment does not continue", "# x\\\na=1", []property{{"a", "1", 2}}},
		{"escapes in key and value", `a\=b\:c\ d=\t\u0041\q`, []property{{"a=b:c d", "\tAq", 1}}},
		{"crlf", "a=1\r\nb=2\r\n", []property{{"a", "1", 1}, {"b", "2", 2}}},
		{"dangling backslash at end", "a=1\\", []property{{"a", "1", 1}}},
		{"duplicates kept in order", "a=1\na=2", []property{{"a", "1", 1}, {"a", "2", 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProperties(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := parseProperties(`a=\u00zz`); err == nil {
		t.Error("bad \\u escape accepted")
	}
}

func TestPropertiesFileLines(t *testing.T) {
	// An error in a continued value names the line where its key starts.
	_, err := load(t, "# x\nnum.partitions=1\nlog.dirs=/a,\\\n  /b\nmessage.max.bytes=\\\n  x", nil, nil)
	wantErr(t, err, "server.properties:5", "message.max.bytes")
	// Later lines replace earlier ones.
	c := mustLoad(t, "num.partitions=2\nnum.partitions=3", nil, nil)
	if c.NumPartitions != 3 {
		t.Errorf("NumPartitions = %d, want the later 3", c.NumPartitions)
	}
}
