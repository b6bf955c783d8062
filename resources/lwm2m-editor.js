/**
 * What the editor files of node-red-contrib-lwm2m-server share: the validation rule of each kind of path field,
 * optional-seconds and number fields, endpoint filters, ports, the content-format select, the server dialog's
 * tabs, the button that opens the device browser, and the autocomplete of path fields.
 *
 * Node-RED serves this file to the editor as resources/node-red-contrib-lwm2m-server/lwm2m-editor.js; each node's
 * .html loads it before its own script, which finds it as `window.lwm2mEditor`. In Node (the unit tests) it is a
 * CommonJS module. The validators and the suggestion filter touch no browser API; the widgets use jQuery and RED
 * only when called.
 *
 * Every text a user reads comes from the message catalog (nodes/locales/<lang>/lwm2m-server.json, section `lwm2m`):
 * `translate` asks the editor's RED._ for it, in the editor's language.
 */
(function (root, factory) {
  'use strict';
  var api = factory(root);
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.lwm2mEditor = api;
})(typeof self !== 'undefined' ? self : this, function (root) {
  'use strict';

  /** The catalog every node set shares: the `lwm2m` section of nodes/locales/<lang>/lwm2m-server.json. */
  var NAMESPACE = 'node-red-contrib-lwm2m-server/lwm2m-server';

  /**
   * The English catalog, for Node (the unit tests), where there is no editor to ask. The editor asks RED._, which
   * has the catalog of the editor's language (Node-RED loads every node set's catalog before the nodes' scripts).
   */
  var ENGLISH = (function () {
    if (typeof module !== 'object' || !module.exports || typeof require !== 'function') return undefined;
    try {
      // eslint-disable-next-line no-undef, @typescript-eslint/no-require-imports -- Node only (typeof checked above)
      return require('../nodes/locales/en-US/lwm2m-server.json');
    } catch {
      return undefined; // an installed package has its catalogs in dist/nodes/locales only
    }
  })();

  /** Fills `__name__` placeholders as Node-RED's i18n does. */
  function interpolate(text, values) {
    return String(text).replace(/__(\w+)__/g, function (whole, name) {
      return values && name in values ? String(values[name]) : whole;
    });
  }

  /**
   * A shared message by its key in the `lwm2m` section (`editor.path.read`, `label.server`), in the editor's
   * language; the key when no catalog has it.
   */
  function translate(key, values) {
    var fullKey = NAMESPACE + ':lwm2m.' + key;
    var RED = typeof root !== 'undefined' && root.RED ? root.RED : undefined;
    if (RED && typeof RED._ === 'function') {
      var found = RED._(fullKey, values);
      if (typeof found === 'string' && found !== fullKey && found !== 'lwm2m.' + key) return found;
    }
    var english = ENGLISH
      ? ('lwm2m.' + key).split('.').reduce(function (at, part) {
          return at && typeof at === 'object' ? at[part] : undefined;
        }, ENGLISH)
      : undefined;
    return typeof english === 'string' ? interpolate(english, values) : key;
  }

  /** A validation message (`editor.<key>` in the catalog) with its `__name__` placeholders filled. */
  function message(key, values) {
    return translate('editor.' + key, values);
  }

  /**
   * What each path field takes, by the operation it is for, as the runtime checks it (lib/server/lwm2m-server.ts):
   * `levels` the path depths allowed (1 object ... 4 resource instance, 0 root); `list` a comma-separated list (a
   * composite operation); `blank` whether blank is fine (msg.path fills it; for a filter: every path);
   * `operation` the resource operation (R, W, E) suggestions are filtered on.
   */
  var PATH_KINDS = {
    read: { levels: [1, 2, 3, 4], list: true, operation: 'R' },
    observe: { levels: [1, 2, 3, 4], list: true, operation: 'R' },
    write: { levels: [2, 3, 4], operation: 'W' },
    execute: { levels: [3], operation: 'E' },
    discover: { levels: [1, 2, 3] },
    create: { levels: [1] },
    delete: { levels: [2, 4] },
    attributes: { levels: [1, 2, 3, 4], operation: 'R' },
    filter: { levels: [0, 1, 2, 3, 4], operation: 'R' },
  };

  /** A whole-value environment variable reference, which Node-RED replaces when the flow starts. */
  var ENV_REFERENCE = /^\$\{[^}\s]+\}$/;

  function text(value) {
    return value === undefined || value === null ? '' : String(value).trim();
  }

  /** The ids of a path text (`/3303/0/5700`, `3303/0/5700/`, `/` = []), or undefined when it is not a path. */
  function pathIds(pathText) {
    var body = text(pathText);
    if (body === '/') return [];
    var match = /^\/?(\d{1,5}(?:\/\d{1,5}){0,3})\/?$/.exec(body);
    return match ? match[1].split('/').map(Number) : undefined;
  }

  /** true, or why `pathText` is not a path of that kind (one path; a list is split by the caller). */
  function checkOnePath(kind, pathText) {
    var ids = pathIds(pathText);
    if (!ids || PATH_KINDS[kind].levels.indexOf(ids.length) < 0) return message('path.' + kind);
    for (var i = 0; i < ids.length; i++) if (ids[i] > 65535) return message('path.ids');
    return true;
  }

  /**
   * true, or the reason `value` is not what a path field of this kind takes. Blank is fine (the msg fills it), so
   * is a `${VAR}` reference.
   */
  function checkPath(kind, value) {
    if (!PATH_KINDS[kind]) throw new Error('unknown path kind ' + kind);
    var trimmed = text(value);
    if (trimmed === '' || ENV_REFERENCE.test(trimmed)) return true;
    if (!PATH_KINDS[kind].list) return checkOnePath(kind, trimmed);
    var items = trimmed.split(',');
    for (var i = 0; i < items.length; i++) {
      if (text(items[i]) === '') return message('path.empty-item');
      var verdict = checkOnePath(kind, items[i]);
      if (verdict !== true) return verdict;
    }
    return true;
  }

  // Node-RED (3.1+) shows a validator's string as the reason only when the validator declares two parameters:
  // with one, any string counts as valid. Every validator below takes (value, opt).

  /** A Node-RED validator for a path field of this kind (see PATH_KINDS). */
  function pathValidator(kind) {
    if (!PATH_KINDS[kind]) throw new Error('unknown path kind ' + kind);
    return function (value, _opt) {
      return checkPath(kind, value);
    };
  }

  /** Blank (the default applies) or a number of seconds > 0. */
  function optionalSeconds(value, _opt) {
    var trimmed = text(value);
    if (trimmed === '' || ENV_REFERENCE.test(trimmed)) return true;
    var n = Number(trimmed);
    return (isFinite(n) && n > 0) || message('seconds');
  }

  /** Blank (the default applies) or a number >= `min`. */
  function optionalNumber(min) {
    return function (value, _opt) {
      var trimmed = text(value);
      if (trimmed === '' || ENV_REFERENCE.test(trimmed)) return true;
      var n = Number(trimmed);
      if (!isFinite(n)) return message('number.any');
      return n >= min || message('number.min', { min: min });
    };
  }

  /** A UDP port 0..65535; blank only when `optional`. */
  function port(optional) {
    return function (value, _opt) {
      var trimmed = text(value);
      if ((optional && trimmed === '') || ENV_REFERENCE.test(trimmed)) return true;
      var n = Number(trimmed);
      return (trimmed !== '' && Number.isInteger(n) && n >= 0 && n <= 65535) || message('port');
    };
  }

  /** Blank or an instance id 0..65534 (65535 is reserved, LwM2M Core §7.2). */
  function optionalInstanceId(value, _opt) {
    var trimmed = text(value);
    if (trimmed === '' || ENV_REFERENCE.test(trimmed)) return true;
    return (/^\d{1,5}$/.test(trimmed) && Number(trimmed) <= 65534) || message('instanceId');
  }

  /** An endpoint filter: a name, a pattern with * and ?, or /regular expression/ (which must compile). */
  function endpointFilter(value, _opt) {
    var trimmed = text(value);
    if (trimmed.length > 2 && trimmed.charAt(0) === '/' && trimmed.charAt(trimmed.length - 1) === '/') {
      try {
        new RegExp(trimmed.slice(1, -1));
      } catch (err) {
        return message('regex', { error: err.message });
      }
    }
    return true;
  }

  /**
   * A notification attribute: blank (not written), or `kind` 'seconds' (whole seconds >= 0), 'integer' (a whole
   * number >= 0), 'number' (with `min` as lower bound when given) or 'flag' (0 or 1). With `clear`, the word clear
   * (the attribute is removed) too.
   */
  function attribute(kind, options) {
    var clear = !!(options && options.clear);
    var min = options ? options.min : undefined;
    var suffix = clear ? '-clear' : '';
    return function (value, _opt) {
      var trimmed = text(value);
      if (trimmed === '' || (clear && trimmed.toLowerCase() === 'clear')) return true;
      var n = Number(trimmed);
      if (kind === 'flag') return n === 0 || n === 1 ? true : message('attribute.flag' + suffix);
      if (!isFinite(n)) return message('attribute.number' + suffix);
      if ((kind === 'seconds' || kind === 'integer') && (!Number.isInteger(n) || n < 0))
        return message('attribute.' + kind + suffix);
      if (min !== undefined && n < min) return message('attribute.min' + suffix, { min: min });
      return true;
    };
  }

  // ---- Content formats -------------------------------------------------------------------------------------

  /**
   * The content formats a node may ask for. `single`: for one resource only (plain text, opaque), which cannot
   * carry an instance: the create node leaves them out.
   */
  var FORMATS = [
    { value: '', key: 'auto' },
    { value: '11542', key: 'tlv' },
    { value: '110', key: 'senmlJson' },
    { value: '112', key: 'senmlCbor' },
    { value: '11543', key: 'omaJson' },
    { value: '0', key: 'text', single: true },
    { value: '42', key: 'opaque', single: true },
  ];

  /**
   * The formats a select offers, `{ value, label }` with the label in the editor's language: all, or (`instances`)
   * those that can carry an object instance.
   */
  function formatChoices(which) {
    return FORMATS.filter(function (format) {
      return which !== 'instances' || !format.single;
    }).map(function (format) {
      return { value: format.value, label: translate('format.' + format.key) };
    });
  }

  /**
   * Fills a content-format select and selects `current` (Node-RED sets a select's value before oneditprepare,
   * when it has no options yet). A value not in the list (a flow from elsewhere) is kept as an extra option.
   */
  function formatSelect(select, current, which) {
    var $select = $(select).empty();
    var value = current === undefined || current === null ? '' : String(current);
    var choices = formatChoices(which);
    choices.forEach(function (format) {
      $('<option>').val(format.value).text(format.label).appendTo($select);
    });
    var known = choices.some(function (format) {
      return format.value === value;
    });
    if (!known) $('<option>').val(value).text(value).appendTo($select);
    $select.val(value);
  }

  // ---- Tabs ------------------------------------------------------------------------------------------------

  /**
   * Tabs (RED.tabs, as core mqtt-broker's dialog): one per child of `content`, labelled by the catalog key in the
   * child's `data-label` (a key of the shared `lwm2m` section). Returns the tabs widget.
   */
  function tabs(list, content) {
    var $content = $(content);
    var widget = RED.tabs.create({
      id: $(list).attr('id'),
      onchange: function (tab) {
        $content.children().hide();
        $('#' + tab.id).show();
      },
    });
    $content.children().each(function () {
      widget.addTab({ id: this.id, label: translate($(this).attr('data-label')) });
    });
    setTimeout(function () {
      widget.resize();
    }, 0);
    return widget;
  }

  // ---- Device browser --------------------------------------------------------------------------------------

  var DEVICE_BROWSER_TAB = 'lwm2m-device-browser';

  /**
   * Opens the LwM2M sidebar tab (the device browser), on the server of config node `serverId` when it runs.
   * The plugin listens for the event; without the plugin, the tab is shown if it exists.
   */
  function openDeviceBrowser(serverId) {
    RED.events.emit('lwm2m-device-browser:show', { serverId: serverId });
    RED.sidebar.show(DEVICE_BROWSER_TAB);
  }

  // ---- Path autocomplete -----------------------------------------------------------------------------------

  /** The part of a path field the user is completing: after the last comma in a list field, else all of it. */
  function splitLastItem(kind, value) {
    var whole = value === undefined || value === null ? '' : String(value);
    if (!PATH_KINDS[kind] || !PATH_KINDS[kind].list) return { head: '', item: whole.trim() };
    var comma = whole.lastIndexOf(',');
    if (comma < 0) return { head: '', item: whole.trim() };
    return { head: whole.slice(0, comma + 1), item: whole.slice(comma + 1).trim() };
  }

  /**
   * Which of the runtime's suggestions (GET lwm2m/paths: `{ path, level, name, operations, multiple, onDevice }`)
   * fit a field of this kind: a path of a depth the field takes, or one on the way to such a path (an object or
   * instance, a multiple resource); a resource only when it offers the kind's operation. Each keeps the earlier
   * items of a list in its `value`.
   */
  function completions(kind, value, suggestions) {
    var rule = PATH_KINDS[kind];
    if (!rule) return [];
    var deepest = Math.max.apply(null, rule.levels);
    var head = splitLastItem(kind, value).head;
    return (suggestions || [])
      .filter(function (suggestion) {
        var level = suggestion.level;
        if (level > deepest) return false;
        if (level >= 3 && rule.operation && (suggestion.operations || '').indexOf(rule.operation) < 0) return false;
        if (rule.levels.indexOf(level) >= 0) return true;
        // Not a path this field takes, but the way to one: an object or instance, or a multiple resource.
        return level < 3 || (level === 3 && !!suggestion.multiple);
      })
      .map(function (suggestion) {
        return {
          value: head + suggestion.path,
          path: suggestion.path,
          name: suggestion.name,
          onDevice: !!suggestion.onDevice,
        };
      });
  }

  /** One line of the suggestion list: the path, then its name from the object model (as text, never HTML). */
  function completionLabel(completion) {
    var $line = $('<div>').addClass('lwm2m-path-completion').css({ display: 'flex', gap: '8px' });
    $('<span>')
      .addClass('lwm2m-path-completion-path')
      .css('font-family', 'monospace')
      .text(completion.path)
      .appendTo($line);
    $('<span>')
      .addClass('lwm2m-path-completion-name')
      .css({ opacity: 0.75, 'font-weight': completion.onDevice ? 'bold' : 'normal' })
      .text(completion.name || '')
      .appendTo($line);
    return $line;
  }

  /**
   * Autocomplete on a path field (Node-RED's autoComplete widget): paths with their names from the server's
   * object model, and the objects and instances of the device named in the endpoint field when the server runs
   * and the device is registered. `options`: `kind` (see PATH_KINDS), `server` and `endpoint` (selectors of the
   * fields to read them from; an endpoint pattern or blank means no particular device).
   */
  function pathAutocomplete(input, options) {
    var $input = $(input);
    if (!$input.length || typeof $input.autoComplete !== 'function') return;
    var kind = options.kind;
    var cache = {};
    var search = function (value, done) {
      var server = options.server ? text($(options.server).val()) : '';
      var endpoint = options.endpoint ? text($(options.endpoint).val()) : '';
      // A pattern or an environment variable names no particular device.
      if (/[*?${}]/.test(endpoint) || (endpoint.charAt(0) === '/' && endpoint.length > 1)) endpoint = '';
      var item = splitLastItem(kind, value).item;
      var query = { path: item };
      if (server && server !== '_ADD_') query.server = server;
      if (endpoint) query.endpoint = endpoint;
      var key = JSON.stringify(query);
      var answer = function (suggestions) {
        done(
          completions(kind, value, suggestions).map(function (completion) {
            return { value: completion.value, label: completionLabel(completion) };
          }),
        );
      };
      if (cache[key]) return answer(cache[key]);
      $.ajax({ url: 'lwm2m/paths', data: query, dataType: 'json' }).then(
        function (body) {
          cache[key] = body.suggestions || [];
          answer(cache[key]);
        },
        function () {
          done([]);
        },
      );
    };
    $input.autoComplete({ minLength: 1, search: search });
  }

  /**
   * What an operation node's dialog does in oneditprepare: fills its content-format select (`formats`: 'all' or
   * 'instances'; no select without it) and puts the autocomplete on its path field (`path`: the kind of path).
   */
  function prepareOperationDialog(node, options) {
    if (options.formats) formatSelect('#node-input-format', node.format, options.formats);
    if (options.path) {
      pathAutocomplete('#node-input-path', {
        kind: options.path,
        server: '#node-input-server',
        endpoint: '#node-input-endpoint',
      });
    }
  }

  return {
    NAMESPACE: NAMESPACE,
    _: translate,
    PATH_KINDS: PATH_KINDS,
    FORMATS: FORMATS,
    message: message,
    pathIds: pathIds,
    checkPath: checkPath,
    validators: {
      path: pathValidator,
      optionalSeconds: optionalSeconds,
      optionalNumber: optionalNumber,
      port: port,
      optionalInstanceId: optionalInstanceId,
      endpointFilter: endpointFilter,
      attribute: attribute,
    },
    formatChoices: formatChoices,
    formatSelect: formatSelect,
    tabs: tabs,
    openDeviceBrowser: openDeviceBrowser,
    splitLastItem: splitLastItem,
    completions: completions,
    pathAutocomplete: pathAutocomplete,
    prepareOperationDialog: prepareOperationDialog,
  };
});
