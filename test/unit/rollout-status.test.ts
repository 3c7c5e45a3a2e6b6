import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rolloutStatus, type WorkloadObject } from '../../src/remediations/rollout-status.js';

/** A Deployment named "web" with generation 2. */
function deployment(spec: WorkloadObject['spec'], status: WorkloadObject['status'], generation = 2): WorkloadObject {
  return { metadata: { name: 'web', generation }, spec, status };
}

const progressing = (reason: string, message = 'ReplicaSet "web-1" has timed out progressing.') => [
  { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
  { type: 'Progressing', status: reason === 'ProgressDeadlineExceeded' ? 'False' : 'True', reason, message },
];

describe('rolloutStatus: Deployment (kubectl DeploymentStatusViewer)', () => {
  it('waits while the controller has not observed the new generation', () => {
    const s = rolloutStatus('Deployment', deployment({ replicas: 3 }, { observedGeneration: 1, replicas: 3, updatedReplicas: 3, availableReplicas: 3 }));
    assert.equal(s.state, 'observing');
    assert.equal(s.message, 'Waiting for deployment spec update to be observed');
  });

  it('ignores an old ProgressDeadlineExceeded until the new generation is observed (as kubectl)', () => {
    const s = rolloutStatus('Deployment', deployment({ replicas: 3 }, { observedGeneration: 1, conditions: progressing('ProgressDeadlineExceeded') }));
    assert.equal(s.state, 'observing');
  });

  it('fails on ProgressDeadlineExceeded, with the condition message', () => {
    const s = rolloutStatus('Deployment', deployment({ replicas: 3 }, { observedGeneration: 2, replicas: 4, updatedReplicas: 1, availableReplicas: 3, conditions: progressing('ProgressDeadlineExceeded') }));
    assert.equal(s.state, 'failed');
    assert.equal(s.message, 'deployment "web" exceeded its progress deadline: ReplicaSet "web-1" has timed out progressing.');
  });

  it('does not fail on another Progressing reason', () => {
    const s = rolloutStatus('Deployment', deployment({ replicas: 3 }, { observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 3, conditions: progressing('NewReplicaSetAvailable') }));
    assert.equal(s.state, 'complete');
  });

  it('is rolling while updatedReplicas < spec.replicas', () => {
    const s = rolloutStatus('Deployment', deployment({ replicas: 3 }, { observedGeneration: 2, replicas: 4, updatedReplicas: 1, availableReplicas: 3 }));
    assert.equal(s.state, 'rolling');
    assert.equal(s.message, 'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated');
    assert.deepEqual(s.counts, { desired: 3, replicas: 4, updated: 1, available: 3 });
  });

  it('is rolling while old replicas are pending termination (replicas > updatedReplicas)', () => {
    const s = rolloutStatus('Deployment', deployment({ replicas: 3 }, { observedGeneration: 2, replicas: 4, updatedReplicas: 3, availableReplicas: 3 }));
    assert.equal(s.state, 'rolling');
    assert.equal(s.message, 'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination');
  });

  it('is rolling while availableReplicas < updatedReplicas', () => {
    const s = rolloutStatus('Deployment', deployment({ replicas: 3 }, { observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 2 }));
    assert.equal(s.state, 'rolling');
    assert.equal(s.message, 'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available');
  });

  it('is complete when all replicas are updated and available', () => {
    const s = rolloutStatus('Deployment', deployment({ replicas: 3 }, { observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 3 }));
    assert.equal(s.state, 'complete');
    assert.equal(s.message, 'deployment "web" successfully rolled out');
  });

  it('is complete when observedGeneration is ahead of generation (>=, not ==)', () => {
    const s = rolloutStatus('Deployment', deployment({ replicas: 1 }, { observedGeneration: 3, replicas: 1, updatedReplicas: 1, availableReplicas: 1 }));
    assert.equal(s.state, 'complete');
  });

  it('treats missing status fields as 0', () => {
    assert.equal(rolloutStatus('Deployment', deployment({ replicas: 2 }, undefined, 1)).state, 'observing');
    const s = rolloutStatus('Deployment', deployment({ replicas: 2 }, { observedGeneration: 2 }));
    assert.equal(s.state, 'rolling');
    assert.match(s.message, /0 out of 2 new replicas/);
    const noAvailable = rolloutStatus('Deployment', deployment({ replicas: 2 }, { observedGeneration: 2, replicas: 2, updatedReplicas: 2 }));
    assert.match(noAvailable.message, /0 of 2 updated replicas are available/);
  });

  it('skips the spec.replicas check when spec.replicas is unset (as kubectl)', () => {
    const s = rolloutStatus('Deployment', deployment({}, { observedGeneration: 2, replicas: 0, updatedReplicas: 0, availableReplicas: 0 }));
    assert.equal(s.state, 'complete');
    assert.equal(s.counts.desired, 'unset');
  });

  it('is complete for a Deployment scaled to zero', () => {
    assert.equal(rolloutStatus('Deployment', deployment({ replicas: 0 }, { observedGeneration: 2 })).state, 'complete');
  });
});

function statefulSet(spec: WorkloadObject['spec'], status: WorkloadObject['status'], generation = 2): WorkloadObject {
  return { metadata: { name: 'db', generation }, spec, status };
}
const rolling = (partition?: number) => ({ type: 'RollingUpdate', rollingUpdate: partition === undefined ? undefined : { partition } });

describe('rolloutStatus: StatefulSet (kubectl StatefulSetStatusViewer)', () => {
  it('is unsupported with the OnDelete strategy', () => {
    const s = rolloutStatus('StatefulSet', statefulSet({ replicas: 3, updateStrategy: { type: 'OnDelete' } }, { observedGeneration: 2 }));
    assert.equal(s.state, 'unsupported');
    assert.match(s.message, /only available for RollingUpdate/);
  });

  it('waits while observedGeneration is 0, even at generation 0', () => {
    assert.equal(rolloutStatus('StatefulSet', statefulSet({ replicas: 1, updateStrategy: rolling(0) }, {}, 0)).state, 'observing');
  });

  it('waits while generation > observedGeneration', () => {
    const s = rolloutStatus('StatefulSet', statefulSet({ replicas: 3, updateStrategy: rolling(0) }, { observedGeneration: 1, readyReplicas: 3 }));
    assert.equal(s.state, 'observing');
    assert.equal(s.message, 'Waiting for statefulset spec update to be observed');
  });

  it('is rolling while readyReplicas < spec.replicas', () => {
    const s = rolloutStatus('StatefulSet', statefulSet({ replicas: 3, updateStrategy: rolling(0) }, { observedGeneration: 2, readyReplicas: 2, updatedReplicas: 1 }));
    assert.equal(s.state, 'rolling');
    assert.equal(s.message, 'Waiting for 1 pods to be ready');
  });

  it('is rolling while a partitioned roll out has not updated replicas - partition pods', () => {
    const s = rolloutStatus('StatefulSet', statefulSet({ replicas: 3, updateStrategy: rolling(1) }, { observedGeneration: 2, readyReplicas: 3, updatedReplicas: 1 }));
    assert.equal(s.state, 'rolling');
    assert.equal(s.message, 'Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated');
  });

  it('is complete once a partitioned roll out reached its pods (partition 0 = all)', () => {
    const s = rolloutStatus('StatefulSet', statefulSet({ replicas: 3, updateStrategy: rolling(0) }, { observedGeneration: 2, readyReplicas: 3, updatedReplicas: 3 }));
    assert.equal(s.state, 'complete');
    assert.equal(s.message, 'partitioned roll out complete: 3 new pods have been updated');
  });

  it('without rollingUpdate: rolling while updateRevision != currentRevision', () => {
    const s = rolloutStatus('StatefulSet', statefulSet({ replicas: 2, updateStrategy: rolling() }, { observedGeneration: 2, readyReplicas: 2, updatedReplicas: 1, currentRevision: 'db-1', updateRevision: 'db-2' }));
    assert.equal(s.state, 'rolling');
    assert.equal(s.message, 'waiting for statefulset rolling update to complete 1 pods at revision db-2');
  });

  it('without rollingUpdate: complete when the revisions match', () => {
    const s = rolloutStatus('StatefulSet', statefulSet({ replicas: 2 }, { observedGeneration: 2, readyReplicas: 2, currentReplicas: 2, currentRevision: 'db-2', updateRevision: 'db-2' }));
    assert.equal(s.state, 'complete');
    assert.equal(s.message, 'statefulset rolling update complete 2 pods at revision db-2');
  });
});

function daemonSet(strategy: string | undefined, status: WorkloadObject['status'], generation = 2): WorkloadObject {
  return { metadata: { name: 'agent', generation }, spec: strategy ? { updateStrategy: { type: strategy } } : {}, status };
}

describe('rolloutStatus: DaemonSet (kubectl DaemonSetStatusViewer)', () => {
  it('is unsupported with the OnDelete strategy', () => {
    assert.equal(rolloutStatus('DaemonSet', daemonSet('OnDelete', { observedGeneration: 2 })).state, 'unsupported');
  });

  it('waits while generation > observedGeneration', () => {
    const s = rolloutStatus('DaemonSet', daemonSet('RollingUpdate', { observedGeneration: 1, desiredNumberScheduled: 3 }));
    assert.equal(s.state, 'observing');
    assert.equal(s.message, 'Waiting for daemon set spec update to be observed');
  });

  it('is rolling while updatedNumberScheduled < desiredNumberScheduled', () => {
    const s = rolloutStatus('DaemonSet', daemonSet('RollingUpdate', { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 1, numberAvailable: 2 }));
    assert.equal(s.state, 'rolling');
    assert.equal(s.message, 'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated');
  });

  it('is rolling while numberAvailable < desiredNumberScheduled', () => {
    const s = rolloutStatus('DaemonSet', daemonSet('RollingUpdate', { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2 }));
    assert.equal(s.state, 'rolling');
    assert.equal(s.message, 'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available');
  });

  it('is complete when every pod is updated and available; a missing strategy counts as RollingUpdate', () => {
    const s = rolloutStatus('DaemonSet', daemonSet(undefined, { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 }));
    assert.equal(s.state, 'complete');
    assert.equal(s.message, 'daemon set "agent" successfully rolled out');
  });

  it('treats missing status fields as 0', () => {
    assert.equal(rolloutStatus('DaemonSet', daemonSet('RollingUpdate', undefined, 1)).state, 'observing');
    assert.equal(rolloutStatus('DaemonSet', daemonSet('RollingUpdate', { observedGeneration: 2, desiredNumberScheduled: 2 })).state, 'rolling');
  });
});
