/**
 * Names that look alike are one name: a name's skeleton (after Unicode TR39) is what must be
 * unique among users and among rooms, so `Аlice` (Cyrillic А), `ａｌｉｃｅ` (fullwidth) and
 * `ALICE` are all Alice, and `gеneral` (Cyrillic е) is general.
 * @module
 */

/**
 * Letters of other scripts that look like Latin ones (lower case; from Unicode's
 * confusables.txt, for the Cyrillic, Greek and Armenian letters that pass as Latin).
 */
const CONFUSABLES: Record<string, string> = {
  // Cyrillic
  "а": "a",
  "в": "b",
  "е": "e",
  "ё": "e",
  "һ": "h",
  "і": "i",
  "ї": "i",
  "ј": "j",
  "к": "k",
  "ӏ": "l",
  "м": "m",
  "н": "h",
  "о": "o",
  "р": "p",
  "с": "c",
  "ԛ": "q",
  "ѕ": "s",
  "т": "t",
  "у": "y",
  "ԝ": "w",
  "х": "x",
  "ԁ": "d",
  "ɡ": "g",
  "ү": "y",
  "ѡ": "w",
  "ԍ": "g",
  // Greek
  "α": "a",
  "β": "b",
  "ε": "e",
  "η": "n",
  "ι": "i",
  "κ": "k",
  "ν": "v",
  "ο": "o",
  "ρ": "p",
  "τ": "t",
  "υ": "u",
  "χ": "x",
  "γ": "y",
  "ϲ": "c",
  "ϳ": "j",
  "ϱ": "p",
  // Armenian
  "օ": "o",
  "ս": "u",
  "ց": "g",
  "հ": "h",
  "ո": "n",
  "զ": "q",
  // Latin look-alikes
  "ı": "i",
  "ɩ": "i",
  "ℓ": "l",
  "ſ": "s",
};

/** The form two names share when people would read them as the same. */
export function skeleton(name: string): string {
  let out = "";
  for (const ch of name.normalize("NFKC").toLowerCase()) out += CONFUSABLES[ch] ?? ch;
  // Marks left over from decomposed letters (é = e + ́) do not tell names apart on screen.
  return out.normalize("NFKD").replace(/\p{M}/gu, "");
}
