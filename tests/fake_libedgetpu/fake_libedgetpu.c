/*
 * Test double for libedgetpu.so.1: the three C API functions that
 * pytest_edgetpu.discovery calls, with the signatures of the real
 * tflite/public/edgetpu_c.h, and none of the hardware behind them.
 *
 * The device list comes from the environment variable FAKE_EDGETPU_DEVICES,
 * read on every call so a test can change it with monkeypatch.setenv:
 *   "<type>:<path>;<type>:<path>..."   type 0 = PCI, 1 = USB (other numbers pass through)
 *   ""                                 no devices (NULL, like the real library)
 *   unset                              one PCI /dev/apex_0, then one USB 2-1
 *
 * Build: cc -shared -fPIC -o libedgetpu.so.1 fake_libedgetpu.c
 */
#include <stdlib.h>
#include <string.h>

enum edgetpu_device_type {
  EDGETPU_APEX_PCI = 0,
  EDGETPU_APEX_USB = 1,
};

struct edgetpu_device {
  enum edgetpu_device_type type;
  const char* path;
};

#ifndef FAKE_PERFORMANCE
#define FAKE_PERFORMANCE "THROTTLED"
#endif

/* The real library embeds this marker; "used" keeps the compiler from dropping it. */
__attribute__((used)) static const char fake_build_marker[] = "PERFORMANCE=" FAKE_PERFORMANCE;

static const char kDefaultDevices[] = "0:/dev/apex_0;1:/sys/bus/usb/devices/2-1";

/* Counts how often edgetpu_list_devices handed out an array and how often it came back. */
static int lists_outstanding = 0;

int fake_edgetpu_lists_outstanding(void) { return lists_outstanding; }

struct edgetpu_device* edgetpu_list_devices(size_t* num_devices) {
  const char* spec = getenv("FAKE_EDGETPU_DEVICES");
  if (spec == NULL) spec = kDefaultDevices;
  *num_devices = 0;

  size_t capacity = 1;
  for (const char* c = spec; *c; ++c) capacity += (*c == ';');
  /* One extra entry with path NULL marks the end for edgetpu_free_devices. */
  struct edgetpu_device* devices = calloc(capacity + 1, sizeof *devices);
  char* copy = strdup(spec);
  if (devices == NULL || copy == NULL) {
    free(devices);
    free(copy);
    return NULL;
  }

  size_t n = 0;
  char* saveptr = NULL;
  for (char* item = strtok_r(copy, ";", &saveptr); item != NULL;
       item = strtok_r(NULL, ";", &saveptr)) {
    char* colon = strchr(item, ':');
    if (colon == NULL) continue;
    *colon = '\0';
    devices[n].type = (enum edgetpu_device_type)atoi(item);
    devices[n].path = strdup(colon + 1);
    ++n;
  }
  free(copy);

  if (n == 0) {
    free(devices);
    return NULL;
  }
  *num_devices = n;
  ++lists_outstanding;
  return devices;
}

void edgetpu_free_devices(struct edgetpu_device* dev) {
  if (dev == NULL) return;
  for (struct edgetpu_device* d = dev; d->path != NULL; ++d) free((void*)d->path);
  free(dev);
  --lists_outstanding;
}

const char* edgetpu_version(void) {
  return "BuildLabel(COMPILER=6.3.0 20170516,DATE=redacted,TIME=redacted), RuntimeVersion(14)";
}
