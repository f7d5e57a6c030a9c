"""An MQTT 5 client on Eclipse Paho (Debian's python3-paho-mqtt 1.6), driven by the tests.

Reads one JSON command a line on stdin, and prints what happens as one JSON event a line on stdout:

  {"do": "connect", "port": 1883, "clientId": "a", "cleanStart": true, "sessionExpiry": 300,
   "will": {"topic": "t", "payload": "offline", "qos": 1, "retain": true}}
      -> {"event": "connack", "reasonCode": 0, "reason": "Success", "sessionPresent": false, "properties": {...}}
  {"do": "subscribe", "topic": "t/#", "qos": 1, "noLocal": false, "retainAsPublished": false, "retainHandling": 0}
      -> {"event": "subscribing", "topic": "t/#", "mid": 1}, then from the SUBACK:
         {"event": "suback", "mid": 1, "reasonCodes": [{"value": 1, "reason": "Granted QoS 1"}]}
  {"do": "publish", "topic": "t", "payload": "x", "qos": 1, "retain": false}
      -> {"event": "publishing", "topic": "t", "mid": 2}, then {"event": "published", "mid": 2}
         (QoS 0: once sent; QoS 1: once its PUBACK came)
  {"do": "disconnect"}
      -> {"event": "disconnected", "reasonCode": 0}

and for each message received: {"event": "message", "topic": ..., "payload": ..., "qos": ..., "retain": ...}.
An exception prints {"event": "error", "message": ...}. The process ends when stdin closes.
"""

import json
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

print_lock = threading.Lock()


def emit(event, **fields):
    with print_lock:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


def reason(code):
    return {"value": code.value, "reason": code.getName()}


def properties_of(properties):
    if properties is None:
        return {}
    return {name: value for name, value in properties.json().items()}


client = None


def on_connect(_client, _userdata, flags, reason_code, properties):
    emit(
        "connack",
        reasonCode=reason_code.value,
        reason=reason_code.getName(),
        sessionPresent=bool(flags.get("session present")),
        properties=properties_of(properties),
    )


def on_subscribe(_client, _userdata, mid, reason_codes, _properties):
    emit("suback", mid=mid, reasonCodes=[reason(c) for c in reason_codes])


def on_publish(_client, _userdata, mid):
    emit("published", mid=mid)


def on_message(_client, _userdata, message):
    emit(
        "message",
        topic=message.topic,
        payload=message.payload.decode("utf-8", "replace"),
        qos=message.qos,
        retain=bool(message.retain),
    )


def on_disconnect(_client, _userdata, reason_code, _properties=None):
    value = reason_code if isinstance(reason_code, int) else reason_code.value
    emit("disconnected", reasonCode=value)


def connect(command):
    global client
    client = mqtt.Client(client_id=command.get("clientId", ""), protocol=mqtt.MQTTv5)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    will = command.get("will")
    if will:
        client.will_set(will["topic"], will.get("payload", ""), will.get("qos", 0), will.get("retain", False))
    properties = Properties(PacketTypes.CONNECT)
    if "sessionExpiry" in command:
        properties.SessionExpiryInterval = command["sessionExpiry"]
    client.connect(
        command.get("host", "127.0.0.1"),
        command["port"],
        keepalive=command.get("keepalive", 60),
        clean_start=command.get("cleanStart", True),
        properties=properties,
    )
    client.loop_start()


def subscribe(command):
    options = SubscribeOptions(
        qos=command.get("qos", 0),
        noLocal=command.get("noLocal", False),
        retainAsPublished=command.get("retainAsPublished", False),
        retainHandling=command.get("retainHandling", 0),
    )
    # The SUBACK may be reported before this line: the test pairs the two by mid, in any order.
    _result, mid = client.subscribe(command["topic"], options=options)
    emit("subscribing", topic=command["topic"], mid=mid)


def publish(command):
    info = client.publish(
        command["topic"], command.get("payload", ""), command.get("qos", 0), command.get("retain", False)
    )
    emit("publishing", topic=command["topic"], mid=info.mid)


def disconnect(_command):
    client.disconnect()
    client.loop_stop()


COMMANDS = {"connect": connect, "subscribe": subscribe, "publish": publish, "disconnect": disconnect}

for line in sys.stdin:
    if not line.strip():
        continue
    try:
        command = json.loads(line)
        COMMANDS[command["do"]](command)
    except Exception as error:  # Reported to the test, which fails on it.
        emit("error", message=f"{type(error).__name__}: {error}")
