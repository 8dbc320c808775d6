import { defineConfig } from 'vitest/config';

// Two projects: the unit tests of the pure logic (seconds, run first), and the system tests, which
// run real programs on loopback in child processes.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'system',
          include: ['test/*.test.ts'],
          // A loaded 2-core machine needs room.
          testTimeout: 60_000,
          hookTimeout: 60_000,
          pool: 'forks',
        },
      },
    ],
  },
});
