// The process groups of the children pgmam is running: each child is started in a group of its own,
// so a stale-lock check can tell whether anything a killed pgmam started is still running, and a
// Ctrl-C can be passed on to them.
export class ChildGroups {
  private readonly live = new Set<number>();
  private readonly listeners = new Set<(groups: number[]) => void | Promise<void>>();

  async add(pgid: number): Promise<void> {
    this.live.add(pgid);
    await this.emit();
  }

  remove(pgid: number): void {
    this.live.delete(pgid);
  }

  current(): number[] {
    return [...this.live];
  }

  /** Called with the live groups each time a child starts; returns the unsubscribe function. */
  onStart(listener: (groups: number[]) => void | Promise<void>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async emit(): Promise<void> {
    for (const l of this.listeners) await l(this.current());
  }
}
