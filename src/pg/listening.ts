// Which TCP ports are listening, read from /proc/net/tcp{,6} (read-only, no tool needed).
export function parseListeningPorts(procNetTcp: string): Set<number> {
  const ports = new Set<number>();
  for (const line of procNetTcp.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    // cols[1] = local "ADDR:PORT" (hex), cols[3] = state; 0A = LISTEN
    if (cols.length > 3 && cols[3] === '0A') {
      const hex = cols[1]!.split(':').pop();
      if (hex) ports.add(parseInt(hex, 16));
    }
  }
  return ports;
}
