package protocols

import "testing"

// TestFoldPathKeys: names a case-insensitive, normalizing file system
// treats as one have one key, and the key is its own key.
func TestFoldPathKeys(t *testing.T) {
	for _, pair := range [][2]string{
		{"Fotos/Straße.JPG", "fotos/STRASSE.jpg"},
		{"Ä", "a\u0308"},
		{"Ꮯ", "ꮯ"}, // Cherokee: x/text's Fold alone swaps these (found by FuzzCheckPath)
		{"Ᏸ", "ᏸ"},
	} {
		a, b := FoldPath(pair[0]), FoldPath(pair[1])
		if a != b {
			t.Errorf("FoldPath(%q) = %q, FoldPath(%q) = %q; want one key", pair[0], a, pair[1], b)
		}
		if again := FoldPath(a); again != a {
			t.Errorf("FoldPath(%q) = %q, not its own key %q", a, again, a)
		}
	}
}
