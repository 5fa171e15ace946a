# Fixture set-up for inference_tokenizer_ref: installs the pinned npm packages
# (package-lock.json) into WORK_DIR and writes the reference ids to OUTPUT.
#   cmake -DSOURCE_DIR=... -DWORK_DIR=... -DOUTPUT=... -DNPM=... -DNODE=... -P make_reference.cmake
foreach(var SOURCE_DIR WORK_DIR OUTPUT NPM NODE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "make_reference.cmake: -D${var}=... is required")
  endif()
endforeach()

file(MAKE_DIRECTORY ${WORK_DIR})
file(COPY ${SOURCE_DIR}/package.json ${SOURCE_DIR}/package-lock.json
     DESTINATION ${WORK_DIR})
execute_process(
  COMMAND ${NPM} ci --no-audit --no-fund --ignore-scripts
  WORKING_DIRECTORY ${WORK_DIR}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "npm ci failed (${rc}): the npm registry must be reachable")
endif()
set(ENV{NODE_PATH} ${WORK_DIR}/node_modules)
execute_process(
  COMMAND ${NODE} ${SOURCE_DIR}/make_reference_ids.js ${SOURCE_DIR}/corpus.json ${OUTPUT}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "make_reference_ids.js failed (${rc})")
endif()
