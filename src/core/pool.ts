// Run async tasks with at most `limit` in flight. A hand-written loop rather than a library: the
// executor needs pause and cancel checks between tasks, which general limiters do not offer.

export async function runLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>, beforeEach?: () => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      if (beforeEach) {
        await beforeEach();
        // Another worker may have taken the last items while this one waited.
        if (next >= items.length) break;
      }
      const item = items[next++]!;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
