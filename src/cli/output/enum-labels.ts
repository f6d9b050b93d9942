/**
 * A short lower-case label for a protobuf enum value, for people: `ApiKeyStatus.ACTIVE` → "active",
 * `ApiKeyFindingKind.OLDER_THAN_90_DAYS` → "older-than-90-days". Unknown values (a newer server) show
 * as their number. Scripts should use `--json`, which carries the full proto names.
 */
export function enumLabel(enumObject: Record<number, string>, value: number): string {
  const name = enumObject[value];
  return name === undefined ? String(value) : name.toLowerCase().replaceAll("_", "-");
}

/**
 * The enum value named by a label (case-insensitive; "-" or "_"), among the values allowed; undefined
 * when there is none. `UNSPECIFIED` is never a choice.
 */
export function enumFromLabel<E extends number>(enumObject: Record<number, string>, label: string, allowed: readonly E[]): E | undefined {
  const wanted = label.trim().toUpperCase().replaceAll("-", "_");
  return allowed.find((value) => enumObject[value] === wanted);
}
