// Parses pg_controldata output: system identifier, cluster state, timeline.
export interface ControlData {
  systemId: string | undefined;
  state: string | undefined;
  timeline: number | undefined;
}

export function parseControlData(text: string): ControlData {
  // "Key:   value" lines, split at the first colon (keys hold apostrophes, never colons).
  const fields = new Map(
    text.split('\n').flatMap((l) => {
      const i = l.indexOf(':');
      return i > 0 ? [[l.slice(0, i).trim(), l.slice(i + 1).trim()] as const] : [];
    }),
  );
  const get = (key: string) => fields.get(key);
  const tli = get("Latest checkpoint's TimeLineID");
  return { systemId: get('Database system identifier'), state: get('Database cluster state'), timeline: tli === undefined ? undefined : Number(tli) };
}
