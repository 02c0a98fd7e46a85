/** `call`, counting its calls (so a test knows the code under test used it, and how often). */
export function countCalls<A extends unknown[], R>(call: (...args: A) => R): { counting: (...args: A) => R; calls: () => number } {
  let n = 0;
  return {
    counting: (...args: A): R => {
      n++;
      return call(...args);
    },
    calls: () => n,
  };
}
