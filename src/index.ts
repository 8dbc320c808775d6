/**
 * tcp-leak-agent: finds TCP sockets this process leaves in CLOSE_WAIT and
 * names the line of code that made them.
 */
export { Agent } from './agent/agent';
export { AGENT_CHANNELS, leakChannel, noticeChannel, scanChannel } from './common/channels';
export type { Notice, DestroyedNotice } from './told/notices';
export type { SocketDump, DumpedSocket } from './explained/dump';
export { configureTestChecks, type VerifyOptions } from './agent/checks';
export { ignoreLocation, ignoreRemote, type RemoteMatch, type SocketIgnore } from './agent/ignore';
export { AgentNotRunningError, ERROR_CODES, InvalidSettingError, SocketLeakError } from './common/errors';
export { formatLeaks } from './told/format';
export { DEFAULT_OPTIONS, type AgentOptions } from './common/options';
export type { AgentLogger, Endpoint, Leak, LeakKind, Location, Origin, ReportFormat, SocketSnapshot, StackLevel } from './common/types';
export type { BackendName } from './measured/backend';
export { backend, currentAgent, dump, findLeaks, ignoreCurrent, snapshot, start, startWith, stop, verifyNoLeaks, type SettingNames } from './agent/api';

// The package's main entry loads every stage (formatLeaks above needs the report formats anyway):
// a running agent then finds them here instead of loading them on demand (see agent/on-demand.ts).
import { LATER_STAGES } from './agent/later-stages';
import { provideLaterStages } from './agent/on-demand';
provideLaterStages(LATER_STAGES);
