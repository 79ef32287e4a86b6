/*
 * Test double for a TFLite external delegate: what load_delegate(path, options)
 * and benchmark_model's --external_delegate_path load, with no accelerator
 * behind it.
 *
 * Options (load_delegate's dict, benchmark_model's "key:value;key:value"):
 *   claim    "all", "none" (default), or a comma list of builtin operator codes
 *            (schema.fbs BuiltinOperator: 3 CONV_2D, 4 DEPTHWISE_CONV_2D,
 *            9 FULLY_CONNECTED, 22 RESHAPE, 25 SOFTMAX ...): the nodes it takes
 *   spin_us  how long each delegated partition busy-waits per invoke (default 0)
 *   refuse   any value: creation fails, reported through report_error
 * A delegated partition computes nothing: its outputs keep what they held. It
 * exists to be timed and to show which operators a delegate took.
 *
 * Only the fields this file touches are declared; the layouts are those of
 * TFLite's C API (tensorflow/lite/core/c/common.h), whose structs only ever
 * grow at the end. TfLiteRegistration is passed by value, so it is declared
 * with every field LiteRT 2.x has, left zero.
 *
 * Build: cc -shared -fPIC -o libfake_delegate.so fake_delegate.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;

typedef struct {
  int size;
  int data[];
} TfLiteIntArray;

typedef struct TfLiteNode TfLiteNode;
struct TfLiteContext;
struct TfLiteDelegate;

typedef struct TfLiteRegistration {
  void* (*init)(struct TfLiteContext*, const char*, size_t);
  void (*free)(struct TfLiteContext*, void*);
  TfLiteStatus (*prepare)(struct TfLiteContext*, TfLiteNode*);
  TfLiteStatus (*invoke)(struct TfLiteContext*, TfLiteNode*);
  const char* (*profiling_string)(const struct TfLiteContext*, const TfLiteNode*);
  int32_t builtin_code;
  const char* custom_name;
  int version;
  void* registration_external;
  void* async_kernel;
  uint64_t inplace_operator;
} TfLiteRegistration;

typedef struct TfLiteContext {
  size_t tensors_size;
  TfLiteStatus (*GetExecutionPlan)(struct TfLiteContext*, TfLiteIntArray**);
  void* tensors;
  void* impl_;
  void* ResizeTensor;
  void* ReportError;
  void* AddTensors;
  TfLiteStatus (*GetNodeAndRegistration)(struct TfLiteContext*, int, TfLiteNode**,
                                         TfLiteRegistration**);
  TfLiteStatus (*ReplaceNodeSubsetsWithDelegateKernels)(struct TfLiteContext*,
                                                        TfLiteRegistration,
                                                        const TfLiteIntArray*,
                                                        struct TfLiteDelegate*);
} TfLiteContext;

typedef struct TfLiteDelegate {
  void* data_;
  TfLiteStatus (*Prepare)(TfLiteContext*, struct TfLiteDelegate*);
  void* CopyFromBufferHandle;
  void* CopyToBufferHandle;
  void* FreeBufferHandle;
  int64_t flags;
  void* opaque_delegate_builder;
} TfLiteDelegate;

#define MAX_CLAIMED 64

typedef struct {
  int claim_all;
  int claimed[MAX_CLAIMED];
  int num_claimed;
  long spin_ns;
} FakeDelegate;

/* Read by the spinning kernels; set when the delegate is created. */
static long spin_ns_of_kernels = 0;

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

static TfLiteStatus kernel_prepare(TfLiteContext* context, TfLiteNode* node) {
  (void)context;
  (void)node;
  return kTfLiteOk;
}

static TfLiteStatus kernel_invoke(TfLiteContext* context, TfLiteNode* node) {
  (void)context;
  (void)node;
  long until = now_ns() + spin_ns_of_kernels;
  while (now_ns() < until) {
  }
  return kTfLiteOk;
}

static int takes(const FakeDelegate* fake, int builtin_code) {
  if (fake->claim_all) return 1;
  for (int i = 0; i < fake->num_claimed; ++i)
    if (fake->claimed[i] == builtin_code) return 1;
  return 0;
}

static TfLiteStatus delegate_prepare(TfLiteContext* context, TfLiteDelegate* delegate) {
  const FakeDelegate* fake = delegate->data_;
  TfLiteIntArray* plan = NULL;
  if (context->GetExecutionPlan(context, &plan) != kTfLiteOk) return kTfLiteError;
  TfLiteIntArray* chosen = malloc(sizeof(TfLiteIntArray) + sizeof(int) * (size_t)plan->size);
  if (chosen == NULL) return kTfLiteError;
  chosen->size = 0;
  for (int i = 0; i < plan->size; ++i) {
    TfLiteNode* node = NULL;
    TfLiteRegistration* registration = NULL;
    if (context->GetNodeAndRegistration(context, plan->data[i], &node, &registration) !=
        kTfLiteOk) {
      free(chosen);
      return kTfLiteError;
    }
    if (takes(fake, registration->builtin_code)) chosen->data[chosen->size++] = plan->data[i];
  }
  TfLiteStatus status = kTfLiteOk;
  if (chosen->size > 0) {
    TfLiteRegistration kernel;
    memset(&kernel, 0, sizeof kernel);
    kernel.prepare = kernel_prepare;
    kernel.invoke = kernel_invoke;
    kernel.custom_name = "FakeDelegate";
    kernel.version = 1;
    status = context->ReplaceNodeSubsetsWithDelegateKernels(context, kernel, chosen, delegate);
  }
  free(chosen);
  return status;
}

static void parse_claim(FakeDelegate* fake, const char* value) {
  if (strcmp(value, "all") == 0) {
    fake->claim_all = 1;
    return;
  }
  if (strcmp(value, "none") == 0) return;
  char* copy = strdup(value);
  if (copy == NULL) return;
  char* saveptr = NULL;
  for (char* item = strtok_r(copy, ",", &saveptr); item != NULL && fake->num_claimed < MAX_CLAIMED;
       item = strtok_r(NULL, ",", &saveptr))
    fake->claimed[fake->num_claimed++] = atoi(item);
  free(copy);
}

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t num_options,
                                              void (*report_error)(const char*)) {
  FakeDelegate* fake = calloc(1, sizeof *fake);
  TfLiteDelegate* delegate = calloc(1, sizeof *delegate);
  if (fake == NULL || delegate == NULL) {
    free(fake);
    free(delegate);
    return NULL;
  }
  for (size_t i = 0; i < num_options; ++i) {
    if (strcmp(keys[i], "claim") == 0) {
      parse_claim(fake, values[i]);
    } else if (strcmp(keys[i], "spin_us") == 0) {
      fake->spin_ns = atol(values[i]) * 1000L;
    } else if (strcmp(keys[i], "refuse") == 0) {
      if (report_error != NULL) report_error("fake delegate: refused by its options");
      free(fake);
      free(delegate);
      return NULL;
    } else {
      if (report_error != NULL) report_error("fake delegate: unknown option");
      free(fake);
      free(delegate);
      return NULL;
    }
  }
  spin_ns_of_kernels = fake->spin_ns;
  delegate->data_ = fake;
  delegate->Prepare = delegate_prepare;
  return delegate;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) {
  if (delegate == NULL) return;
  free(delegate->data_);
  free(delegate);
}
