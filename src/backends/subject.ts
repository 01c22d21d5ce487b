// What a backend error is about: one path, or the two paths of a rename; relative to the target.

export type Subject = string | readonly [from: string, to: string];

/** A subject for a message: quoted paths, and words for the target's own folder (path ""). */
export function describeSubject(subject: Subject): string {
  const one = (path: string) => (path === '' ? '"" (the target folder)' : JSON.stringify(path));
  return typeof subject === 'string' ? one(subject) : `${one(subject[0])} to ${one(subject[1])}`;
}
