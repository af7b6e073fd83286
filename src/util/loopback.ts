/** This machine's own addresses (and a Unix socket directory), where a connection crosses no network. */
export function isLocalHost(host: string): boolean {
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === '[::1]' || host.startsWith('/');
}
