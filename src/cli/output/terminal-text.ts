// Text that came from a server or a file (key names, metadata, error messages) could carry escape
// sequences that rewrite the operator's terminal; everything the CLI prints from elsewhere goes through here.
// eslint-disable-next-line no-control-regex
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this pattern is for.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** The text with control, line-separator and bidi-override characters replaced by U+FFFD. */
export function printable(text: string): string {
  return text.replace(CONTROL_CHARACTERS, "\uFFFD");
}
