"""The bus as nova and Ceilometer use it, through Debian's oslo.messaging."""
import copy
import json
import os
import threading
import time
import uuid

import oslo_messaging
from oslo_config import cfg
from oslo_context import context as oslo_context

FIXTURES = os.path.join(os.path.dirname(__file__), '..', 'data', 'fixtures',
                        'nova-notifications')


def transport(url, config_file=None):
    """A notification transport; config_file: a nova.conf whose [oslo_messaging_rabbit]
    (rabbit_quorum_queue, amqp_durable_queues...) oslo reads as nova would."""
    # nova's exchange: nova sets control_exchange = nova (oslo's default is openstack)
    oslo_messaging.set_transport_defaults(control_exchange='nova')
    conf = cfg.ConfigOpts()
    conf(['--config-file', config_file] if config_file else [], project='migpilot-tests')
    return oslo_messaging.get_notification_transport(conf, url=url)


class Collector:
    """A notification listener on exchange nova, topic notifications, the way Ceilometer
    listens (its queue is notifications.info)."""

    def __init__(self, url, topics=('notifications',), pool=None, config_file=None):
        self.notifications = []
        self.lock = threading.Lock()
        self.transport = transport(url, config_file)
        targets = [oslo_messaging.Target(topic=t, exchange='nova') for t in topics]
        self.listener = oslo_messaging.get_notification_listener(
            self.transport, targets, [self], executor='threading', pool=pool)

    # oslo endpoint method for priority INFO
    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        with self.lock:
            self.notifications.append({'publisher_id': publisher_id,
                                       'event_type': event_type,
                                       'payload': payload,
                                       'metadata': metadata})

    def start(self):
        self.listener.start()
        return self

    def stop(self):
        self.listener.stop()
        self.listener.wait()
        self.transport.cleanup()

    def of(self, event_type, instance=None):
        with self.lock:
            return [n for n in self.notifications if n['event_type'] == event_type and
                    (instance is None or n['payload'].get('instance_id') == instance)]

    def wait_for(self, event_type, instance=None, count=1, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of(event_type, instance)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError('%d x %s for %s not received within %ss; got %s'
                             % (count, event_type, instance, timeout,
                                sorted({n['event_type'] for n in self.notifications})))


def versioned_payload(instance_uuid, host, node=None):
    """The payload of a genuine captured instance.live_migration_pre.start, re-targeted."""
    with open(os.path.join(FIXTURES, 'instance.live_migration_pre.start.inner.json')) as f:
        inner = json.load(f)
    payload = copy.deepcopy(inner['payload'])
    data = payload['nova_object.data']
    data['uuid'] = instance_uuid
    data['host'] = host
    data['node'] = node or host
    return payload


def publish_nova_pre_live_migration(url, instance_uuid, source, dest, project, user,
                                    request_id, config_file=None):
    """What nova's destination compute sends when a live migration starts: the versioned
    and the legacy pre.start, with the request's context."""
    t = transport(url, config_file)
    try:
        # a RequestContext as nova passes: oslo.messaging 16 drops a dict context
        ctxt = oslo_context.RequestContext(request_id=request_id, user_id=user,
                                           project_id=project, is_admin=True)
        versioned = oslo_messaging.Notifier(t, publisher_id='nova-compute:%s' % dest,
                                            driver='messagingv2',
                                            topics=['versioned_notifications'])
        payload = versioned_payload(instance_uuid, source)
        payload['nova_object.data']['request_id'] = request_id
        payload['nova_object.data']['tenant_id'] = project
        payload['nova_object.data']['user_id'] = user
        versioned.info(ctxt, 'instance.live_migration_pre.start', payload)
        legacy = oslo_messaging.Notifier(t, publisher_id='compute.%s' % dest,
                                         driver='messagingv2', topics=['notifications'])
        legacy.info(ctxt, 'compute.instance.live_migration.pre.start',
                    {'instance_id': instance_uuid, 'tenant_id': project, 'user_id': user,
                     'host': source, 'node': source})
    finally:
        t.cleanup()


def new_request_id():
    return 'req-%s' % uuid.uuid4()


def publish_nova_abort(url, instance_uuid, source, request_id):
    """What nova's source compute sends when an operator aborts a live migration
    (DELETE /servers/{id}/migrations/{mid}), before it calls abortJob."""
    t = transport(url)
    try:
        ctxt = oslo_context.RequestContext(request_id=request_id, is_admin=True)
        versioned = oslo_messaging.Notifier(t, publisher_id='nova-compute:%s' % source,
                                            driver='messagingv2',
                                            topics=['versioned_notifications'])
        payload = versioned_payload(instance_uuid, source)
        payload['nova_object.data']['task_state'] = 'migrating'
        versioned.info(ctxt, 'instance.live_migration_abort.start', payload)
    finally:
        t.cleanup()
