/**
 * What of the later stages the agent uses once there is something to explain or tell: a leak's
 * description (its cause, its line, its evidence), a dump or a snapshot, the report formats and
 * the tellers (output, logger, CI files). Loaded on demand (see on-demand.ts).
 */
import { describeLeak, kindOf } from '../explained/leak';
import { FunctionLocator } from '../explained/function-locations';
import { SourcePositions } from '../explained/source-positions';
import { trackedDumpRows, untrackedDumpRows } from '../explained/dump';
import { describeSockets } from '../explained/snapshot';
import { socketSites } from '../explained/socket-sites';
import { formatLeaks } from '../told/format';
import { Reporter } from '../told/reporter';
import { LeakTeller } from '../told/leak-teller';
import { CiTeller } from '../told/ci-teller';

export const LATER_STAGES = {
  describeLeak,
  kindOf,
  FunctionLocator,
  SourcePositions,
  trackedDumpRows,
  untrackedDumpRows,
  describeSockets,
  socketSites,
  formatLeaks,
  Reporter,
  LeakTeller,
  CiTeller,
};
