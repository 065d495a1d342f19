package coordinator

import "testing"

func TestSafeListen_LoopbackOnlyWithoutTokensUnlessInsecure(t *testing.T) {
	for _, tc := range []struct {
		listen          string
		tokens, insec   bool
		want            string
		wantErr, notice bool
	}{
		{":8989", false, false, "127.0.0.1:8989", false, true},
		{"127.0.0.1:8989", false, false, "127.0.0.1:8989", false, false},
		{"[::1]:8989", false, false, "[::1]:8989", false, false},
		{"localhost:8989", false, false, "localhost:8989", false, false},
		{"0.0.0.0:8989", false, false, "", true, false},
		{"10.1.2.3:8989", false, false, "", true, false},
		{"0.0.0.0:8989", false, true, "0.0.0.0:8989", false, true},
		{":8989", true, false, ":8989", false, false},
		{"nonsense", true, false, "", true, false},
	} {
		got, notice, err := safeListen(tc.listen, tc.tokens, tc.insec)
		if (err != nil) != tc.wantErr || got != tc.want || (notice != "") != tc.notice {
			t.Errorf("safeListen(%q, tokens=%v, insecure=%v) = %q, %q, %v", tc.listen, tc.tokens, tc.insec, got, notice, err)
		}
	}
}
