// Parses pg_controldata output: system identifier, cluster state, timeline.
export interface ControlData {
  systemId: string | undefined;
  state: string | undefined;
  timeline: number | undefined;
}

export function parseControlData(text: string): ControlData {
  const get = (key: string) => new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\']/g, '\\$&')}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const tli = get("Latest checkpoint's TimeLineID");
  return { systemId: get('Database system identifier'), state: get('Database cluster state'), timeline: tli === undefined ? undefined : Number(tli) };
}
