/**
 * Rollout status as `kubectl rollout status` computes it, as a pure function of one object.
 * Follows kubectl's status viewers (staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go):
 * https://github.com/kubernetes/kubectl/blob/master/pkg/polymorphichelpers/rollout_status.go
 * Missing numeric fields count as 0, as Go's zero values do; a missing `spec.replicas` skips the
 * checks that need it, as kubectl does (the API server always defaults it, so this is rare).
 */

/** The workload kinds remediator can restart (all in apps/v1). */
export const workloadKinds = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;
export type WorkloadKind = (typeof workloadKinds)[number];

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

/** The fields of a Deployment, StatefulSet or DaemonSet the status logic reads (all optional). */
export interface WorkloadObject {
  metadata?: { name?: string; generation?: number };
  spec?: {
    replicas?: number;
    paused?: boolean;
    /** StatefulSet and DaemonSet. */
    updateStrategy?: { type?: string; rollingUpdate?: { partition?: number; maxUnavailable?: unknown } };
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    currentReplicas?: number;
    currentRevision?: string;
    updateRevision?: string;
    conditions?: Condition[];
    /** DaemonSet. */
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
  };
}

/**
 * `observing`: the controller has not seen the latest spec yet; `rolling`: still rolling out;
 * `complete`: done; `failed`: the Deployment exceeded its progress deadline; `unsupported`: kubectl
 * cannot follow this rollout (StatefulSet/DaemonSet with the OnDelete strategy).
 */
export type RolloutState = 'observing' | 'rolling' | 'complete' | 'failed' | 'unsupported';

export interface RolloutStatus {
  state: RolloutState;
  /** kubectl's sentence for this state (without its trailing "...\n"). */
  message: string;
  /** The numbers the message is built from, for the audit. */
  counts: Record<string, number | string>;
}

const n = (v: number | undefined): number => v ?? 0;

/** The status of a rollout of `obj`, a workload of kind `kind`. */
export function rolloutStatus(kind: WorkloadKind, obj: WorkloadObject): RolloutStatus {
  switch (kind) {
    case 'Deployment':
      return deploymentStatus(obj);
    case 'StatefulSet':
      return statefulSetStatus(obj);
    case 'DaemonSet':
      return daemonSetStatus(obj);
  }
}

/** kubectl DeploymentStatusViewer. */
function deploymentStatus(d: WorkloadObject): RolloutStatus {
  const name = d.metadata?.name ?? '';
  const s = d.status ?? {};
  const generation = n(d.metadata?.generation);
  const observed = n(s.observedGeneration);
  if (generation > observed) {
    return { state: 'observing', message: 'Waiting for deployment spec update to be observed', counts: { generation, observedGeneration: observed } };
  }
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    const detail = progressing.message ? `: ${progressing.message}` : '';
    return { state: 'failed', message: `deployment "${name}" exceeded its progress deadline${detail}`, counts: { reason: 'ProgressDeadlineExceeded' } };
  }
  const desired = d.spec?.replicas;
  const replicas = n(s.replicas);
  const updated = n(s.updatedReplicas);
  const available = n(s.availableReplicas);
  const counts = { desired: desired ?? 'unset', replicas, updated, available };
  const waiting = `Waiting for deployment "${name}" rollout to finish:`;
  if (desired !== undefined && updated < desired) {
    return { state: 'rolling', message: `${waiting} ${updated} out of ${desired} new replicas have been updated`, counts };
  }
  if (replicas > updated) {
    return { state: 'rolling', message: `${waiting} ${replicas - updated} old replicas are pending termination`, counts };
  }
  if (available < updated) {
    return { state: 'rolling', message: `${waiting} ${available} of ${updated} updated replicas are available`, counts };
  }
  return { state: 'complete', message: `deployment "${name}" successfully rolled out`, counts };
}

/** kubectl StatefulSetStatusViewer. */
function statefulSetStatus(sts: WorkloadObject): RolloutStatus {
  const strategy = sts.spec?.updateStrategy;
  // The API server defaults the strategy type to RollingUpdate; an object read from it always has one.
  const type = strategy?.type ?? 'RollingUpdate';
  if (type !== 'RollingUpdate') {
    return { state: 'unsupported', message: `rollout status is only available for RollingUpdate strategy type (statefulset uses ${type})`, counts: {} };
  }
  const s = sts.status ?? {};
  const generation = n(sts.metadata?.generation);
  const observed = n(s.observedGeneration);
  if (observed === 0 || generation > observed) {
    return { state: 'observing', message: 'Waiting for statefulset spec update to be observed', counts: { generation, observedGeneration: observed } };
  }
  const desired = sts.spec?.replicas;
  const ready = n(s.readyReplicas);
  const updated = n(s.updatedReplicas);
  const counts: Record<string, number | string> = { desired: desired ?? 'unset', ready, updated };
  if (desired !== undefined && ready < desired) {
    return { state: 'rolling', message: `Waiting for ${desired - ready} pods to be ready`, counts };
  }
  if (strategy?.rollingUpdate) {
    const partition = strategy.rollingUpdate.partition;
    if (desired !== undefined && partition !== undefined && updated < desired - partition) {
      return { state: 'rolling', message: `Waiting for partitioned roll out to finish: ${updated} out of ${desired - partition} new pods have been updated`, counts: { ...counts, partition } };
    }
    return { state: 'complete', message: `partitioned roll out complete: ${updated} new pods have been updated`, counts };
  }
  const current = s.currentRevision ?? '';
  const update = s.updateRevision ?? '';
  if (update !== current) {
    return { state: 'rolling', message: `waiting for statefulset rolling update to complete ${updated} pods at revision ${update}`, counts: { ...counts, currentRevision: current, updateRevision: update } };
  }
  return { state: 'complete', message: `statefulset rolling update complete ${n(s.currentReplicas)} pods at revision ${current}`, counts };
}

/** kubectl DaemonSetStatusViewer. */
function daemonSetStatus(ds: WorkloadObject): RolloutStatus {
  const name = ds.metadata?.name ?? '';
  const type = ds.spec?.updateStrategy?.type ?? 'RollingUpdate';
  if (type !== 'RollingUpdate') {
    return { state: 'unsupported', message: `rollout status is only available for RollingUpdate strategy type (daemon set uses ${type})`, counts: {} };
  }
  const s = ds.status ?? {};
  const generation = n(ds.metadata?.generation);
  const observed = n(s.observedGeneration);
  if (generation > observed) {
    return { state: 'observing', message: 'Waiting for daemon set spec update to be observed', counts: { generation, observedGeneration: observed } };
  }
  const desired = n(s.desiredNumberScheduled);
  const updated = n(s.updatedNumberScheduled);
  const available = n(s.numberAvailable);
  const counts = { desired, updated, available };
  const waiting = `Waiting for daemon set "${name}" rollout to finish:`;
  if (updated < desired) {
    return { state: 'rolling', message: `${waiting} ${updated} out of ${desired} new pods have been updated`, counts };
  }
  if (available < desired) {
    return { state: 'rolling', message: `${waiting} ${available} of ${desired} updated pods are available`, counts };
  }
  return { state: 'complete', message: `daemon set "${name}" successfully rolled out`, counts };
}
