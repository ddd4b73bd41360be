/** Kernel tests share one addon per worker and real kernel state: scripts/run-tests.js runs them in band. */
module.exports = {
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  testEnvironment: 'node',
  testTimeout: 30000,
};
